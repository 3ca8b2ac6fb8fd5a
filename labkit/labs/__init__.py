"""Exercises of each lab, shared by the lab notebook and its solutions notebook."""
