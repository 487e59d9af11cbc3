"""Runs on other machines, read over the system's ssh.

A remote run is *mirrored*: one syncer per host copies only the new bytes of each remote run file into
a private local directory, keeping the local tailers' view of the file exactly (appends are appended, a
truncation truncates, a replaced or rotated file becomes a new local file). Every local reader then
reads the mirror unchanged, so each format's tailing rules apply over ssh as they do on local disk.
docs/remote.md describes it for users.
"""
