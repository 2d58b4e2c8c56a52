"""The pure core: events, the state they fold into, and the commands that make them.

Nothing in this package does I/O or reads a clock; time and ids are passed in.
"""
