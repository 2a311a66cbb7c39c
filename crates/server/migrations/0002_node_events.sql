-- What the server did to a node and why: the risk engine's cordons, drains, device holds and quarantines,
-- and operators' actions. Keyed by time: a node's events are strictly increasing in at_us.
CREATE TABLE node_events (
    node TEXT NOT NULL,
    at_us BIGINT NOT NULL,
    action TEXT NOT NULL,
    reason TEXT NOT NULL,
    PRIMARY KEY (node, at_us)
);
