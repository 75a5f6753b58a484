"""Plain, independent implementations of the method, written from the paper, to test the package against."""
