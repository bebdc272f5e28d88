"""`abidance chaos`: a standing fault campaign against the node, the simulator and the store."""
