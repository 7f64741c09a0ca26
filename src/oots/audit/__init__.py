"""The audit journal (IR 2022/1463 art. 17): every step of every exchange, sealed in a hash chain.

``oots.audit.chain`` holds the chain arithmetic (no I/O); ``oots.audit.sealing`` encrypts the personal
data an entry keeps.
"""
