"""The static-site pipeline: sources to posts, posts to pages and feeds, pages to files.

Knows nothing of federation; build extensions (content/extension.py) add other outputs.
"""
