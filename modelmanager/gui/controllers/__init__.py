"""What the main window does besides showing tabs: one controller per concern, each over a
WindowContext (gui/context.py) rather than the window itself."""
