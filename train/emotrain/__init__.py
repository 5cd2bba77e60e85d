"""emotrain: make and measure emotion models — labelled datasets, metrics, evaluation through the
server, head training, and the small random-weight models that tests and users try the export
path with. It builds on emoexport (the formats it writes are the ones export reads) and calls
served models through emoclient; nothing below it imports it."""
