mod control_plane;
mod kubectl;
mod node;
mod support;
