"""SDE -- Spectral Disentanglement and Enhancement (torch only).

Not implemented yet: the SVD split into strong / weak / noise subspaces, the curriculum enhancement and
the dual-domain contrastive loss arrive with the SDE issue (#6). Importing this package gives no API.
"""

__all__: list[str] = []
