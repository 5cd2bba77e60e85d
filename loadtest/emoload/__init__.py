"""Load tests for emotion models on Triton: Locust users, and the `emotriton loadtest` runner.

`corpus.txt` holds 300 texts of go_emotions' validation split (Apache-2.0, google-research).
"""
