//! TEMPORARY: io::Error conversions until the socket-layer branch lands (deleted at merge).

use crate::{AcceptError, CloseError, CloseReason, ConnectError, ListenError, RecvError, SendError};
use std::io::{Error, ErrorKind as K};

macro_rules! conv {
    ($t:ty, $($p:pat => $k:expr),* $(,)?) => {
        impl From<$t> for Error {
            fn from(e: $t) -> Error {
                let kind = match e { $($p => $k),* };
                Error::new(kind, format!("{e:?}"))
            }
        }
    };
}

conv!(ListenError, ListenError::AddressInUse => K::AddrInUse, ListenError::AddressNotLocal => K::AddrNotAvailable, ListenError::InvalidPort => K::InvalidInput);
conv!(AcceptError, AcceptError::WouldBlock => K::WouldBlock, AcceptError::InvalidHandle => K::InvalidInput);
conv!(ConnectError, ConnectError::AddressInUse => K::AddrInUse, ConnectError::AddressNotLocal => K::AddrNotAvailable, ConnectError::NoRoute => K::NetworkUnreachable, ConnectError::InvalidRemote => K::InvalidInput, ConnectError::PortsExhausted => K::AddrNotAvailable);
conv!(SendError, SendError::WouldBlock => K::WouldBlock, SendError::NotConnected => K::NotConnected, SendError::Closed => K::BrokenPipe, SendError::Reset => K::ConnectionReset, SendError::TimedOut => K::TimedOut, SendError::InvalidHandle => K::InvalidInput);
conv!(RecvError, RecvError::WouldBlock => K::WouldBlock, RecvError::NotConnected => K::NotConnected, RecvError::Reset => K::ConnectionReset, RecvError::Refused => K::ConnectionRefused, RecvError::TimedOut => K::TimedOut, RecvError::InvalidHandle => K::InvalidInput);
conv!(CloseError, CloseError::InvalidHandle => K::InvalidInput, CloseError::NotConnected => K::NotConnected);
conv!(CloseReason, CloseReason::Normal => K::Other, CloseReason::Reset => K::ConnectionReset, CloseReason::Refused => K::ConnectionRefused, CloseReason::TimedOut => K::TimedOut, CloseReason::Aborted => K::ConnectionAborted);
