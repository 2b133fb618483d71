"""One exchange's life, written once (`driver`), and its ASGI reply player (`asgi`).

Layered between the fault engine (faults/, which decides) and the injection points
(intercept/, proxy/, mock/, which interpret the driver's actions as I/O).
"""
