"""The desktop application (PySide6): the only package that imports Qt."""

#: The main window's tabs, in order, by the names ``gui --tab`` takes (no Qt imported here, so
#: the command line can offer them without loading Qt).
TABS = ("overview", "history", "tensors", "layout", "devices", "jobs", "performance")
