"""``venvkeeper update``: take the updates a policy allows, test them, ship them, tell the admins."""
