"""Results on disk: run folders, versioned record/manifest documents (schemas, upgrades), merging shards."""
