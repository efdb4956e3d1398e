"""Talking to where images live: registries over HTTP and OCI layout directories.

`auth` answers registry challenges, `registry` is the distribution API client,
`layout` is an OCI image layout on disk, and `store` puts both behind one interface.
"""
