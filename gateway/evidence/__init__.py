"""Evidence: the hash chain over every stored message, receipt and batch.

chain.py  append committed records to the chain (after commit), verify it, print its head
"""
