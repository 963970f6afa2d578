"""Writing workflows: drafts in the admin, publishing versions, the dry run, the diagram."""
