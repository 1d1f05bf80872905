"""The websocket edge shared by the widget and the console: uvicorn's
protocol with direct writes, per-route compression, in-order frame sending."""
