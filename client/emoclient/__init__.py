"""emoclient: the SDK for emotion classifiers served by emotriton on Triton."""
