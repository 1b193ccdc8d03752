mod support;
mod control_plane;
mod node;
mod kubectl;
