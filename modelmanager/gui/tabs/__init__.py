"""The tabs on the right of the main window, one module each."""
