"""Switchable architecture modules for small objects (all off by default; see ``ModulesConfig``).

One file per module; ``registry`` maps names to builders and wires them into the detector.
"""
