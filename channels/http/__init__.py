"""The HTTP edge kit shared by the channels and the console."""
