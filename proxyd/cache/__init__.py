"""On-demand cache: disk store, origin fills, paced replay, freshness, and the serving strategy."""
