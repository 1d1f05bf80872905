"""Web chat channel: the widget's websocket, its protocol and the widget files."""
