//! Store-and-forward delivery of sealed envelopes: [`queue`] keeps them in the database until
//! acknowledged, [`writer`] commits its hot writes in groups, [`registry`] knows which
//! devices are connected, [`cursor`] tracks what each connection has sent, [`live`] relays what is never stored, [`bus`] carries its notices to the other nodes, and [`socket`]
//! runs one device's WebSocket.

pub mod bus;
pub mod cursor;
pub mod live;
pub mod queue;
pub mod registry;
pub mod socket;
pub mod writer;
