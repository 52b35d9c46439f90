"""``make bench``: load Herald's ``POST /os-server-external-events`` with wrk and report against the targets."""
