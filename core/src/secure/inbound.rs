//! The receiving side of any encrypted connection: handshake messages first, then records.

use super::record::{Opener, RecordError, RecordReader};

/// Cuts what a connection receives into handshake messages (handed to the link's state
/// machine) until the handshake yields an [`Opener`], and into opened records after that.
#[derive(Debug, Default)]
pub struct Inbound {
    records: RecordReader,
    opener: Option<Opener>,
}

impl Inbound {
    /// Reads `bytes`: each handshake message goes to `on_handshake`, which returns the
    /// channel's opener once its handshake is through (records after it in the same bytes are
    /// opened with it); the plaintext of every record is appended to `plain`. Stops at the
    /// first error, which ends the connection.
    pub fn read<E: From<RecordError>>(
        &mut self,
        mut bytes: &[u8],
        plain: &mut Vec<u8>,
        mut on_handshake: impl FnMut(&[u8]) -> Result<Option<Opener>, E>,
    ) -> Result<(), E> {
        while let Some(record) = self.records.next(&mut bytes) {
            match self.opener.as_mut() {
                Some(opener) => opener.open(record, plain)?,
                None => self.opener = on_handshake(record)?,
            }
        }
        Ok(())
    }

    /// The handshake finished outside [`read`](Inbound::read) (an acceptor that waited for
    /// an introduction): records from now on are opened with `opener`.
    pub fn open_with(&mut self, opener: Opener) {
        self.opener = Some(opener);
    }
}
