"""HTTP plumbing shared by every router.

problems.py  the error tree mapped to problem+json in one place
"""
