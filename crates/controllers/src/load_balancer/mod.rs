//! LoadBalancerController: Services of type LoadBalancer get an address
//! from a pool (the built-in provider, like ServiceLB or MetalLB).

pub mod controller;
pub mod plan;

pub use controller::LoadBalancerController;
pub use plan::{
    plan_load_balancers, published_address, wants_address, AddressPool, StatusChange, IP_MODE,
};
