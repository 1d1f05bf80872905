"""Agent console: login, inbox, conversation view and the console websocket."""
