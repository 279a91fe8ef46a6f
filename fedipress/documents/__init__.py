"""Pure values and document builders: posts, URLs, ActivityStreams, WebFinger, NodeInfo.

No file, network, database or clock access: every input is a parameter.
"""
