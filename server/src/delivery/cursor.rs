//! Which of a device's queued envelopes one connection has sent. Envelopes reach a socket
//! two ways: read from the queue in the database (after a wake-up, and on connecting), or
//! pushed by the group commit straight after committing them, which saves the socket a
//! read per envelope. A push can overtake an envelope committed just before it by another
//! path (an expiry notice) whose wake-up is still on its way, so a push never moves the
//! point the socket reads after: only a read does. Pushed envelopes above that point are
//! remembered, so a read skips them instead of sending them twice.

/// Pushed envelopes remembered above the read point; at this many, the socket reads its
/// queue, which moves the point past them (one read per this many pushes).
pub const MAX_AHEAD: usize = 64;

#[derive(Default)]
pub struct Cursor {
    /// Every envelope up to here that is still queued has been sent on this connection.
    read_to: i64,
    /// Envelopes above `read_to` that were pushed and sent.
    ahead: Vec<i64>,
}

/// A read of the queue under way: see [`Cursor::begin_read`].
pub struct Read {
    /// The highest envelope pushed when the read began.
    horizon: i64,
}

impl Cursor {
    /// Whether pushed envelope `seq` is new to this connection (then it is sent, and
    /// remembered); a repeat of one already sent is not.
    pub fn take_pushed(&mut self, seq: i64) -> bool {
        if seq <= self.read_to || self.ahead.contains(&seq) {
            return false;
        }
        self.ahead.push(seq);
        true
    }

    /// Whether the socket should read its queue now to forget what it pushed.
    pub fn should_read(&self) -> bool {
        self.ahead.len() >= MAX_AHEAD
    }

    /// Starts a read of the queue. Everything pushed so far was committed before this
    /// moment, and with it everything committed before it, so a read that starts now sees
    /// them all.
    pub fn begin_read(&self) -> Read {
        Read {
            horizon: self.ahead.iter().copied().max().unwrap_or(0),
        }
    }

    /// The envelope to read after.
    pub fn read_after(&self) -> i64 {
        self.read_to
    }

    /// Whether envelope `seq`, just read, is to be sent (it was not pushed already).
    pub fn take_read(&mut self, seq: i64) -> bool {
        self.read_to = self.read_to.max(seq);
        !self.ahead.contains(&seq)
    }

    /// Ends a read that went to the end of the queue: the point moves past every push it
    /// covered.
    pub fn end_read(&mut self, read: Read) {
        self.read_to = self.read_to.max(read.horizon);
        let read_to = self.read_to;
        self.ahead.retain(|&s| s > read_to);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Plays a read of `queue` (the seqs still queued) as the socket does; returns what it
    /// sends.
    fn read(cursor: &mut Cursor, queue: &[i64]) -> Vec<i64> {
        let read = cursor.begin_read();
        let after = cursor.read_after();
        let sent = queue
            .iter()
            .copied()
            .filter(|&s| s > after)
            .filter(|&s| cursor.take_read(s))
            .collect();
        cursor.end_read(read);
        sent
    }

    /// An expiry notice (seq 10) committed just before a send (seq 11), whose push arrives
    /// first: the read its wake-up causes still finds 10, and does not send 11 again.
    #[test]
    fn a_push_that_overtakes_an_earlier_envelope_does_not_hide_it() {
        let mut c = Cursor::default();
        assert!(c.take_pushed(11));
        assert_eq!(read(&mut c, &[10, 11]), vec![10]);
        // 11 again (a late duplicate push) and 10 again are not sent.
        assert!(!c.take_pushed(11));
        assert_eq!(read(&mut c, &[10, 11]), Vec::<i64>::new());
    }

    /// Pushes are remembered only up to `MAX_AHEAD`; a read then forgets them, whether or
    /// not they were acknowledged (gone from the queue) meanwhile.
    #[test]
    fn pushes_are_forgotten_at_the_next_read() {
        let mut c = Cursor::default();
        for s in 1..=MAX_AHEAD as i64 {
            assert!(c.take_pushed(s));
        }
        assert!(c.should_read());
        // Half were acknowledged and deleted; the rest are still queued.
        let queued: Vec<i64> = (MAX_AHEAD as i64 / 2..=MAX_AHEAD as i64).collect();
        assert_eq!(read(&mut c, &queued), Vec::<i64>::new());
        assert!(!c.should_read());
        assert!(!c.take_pushed(3));
        assert!(c.take_pushed(MAX_AHEAD as i64 + 1));
    }

    /// A read that stops early (a full batch) does not move the point past pushes it has
    /// not reached: the next batch still sends what lies between.
    #[test]
    fn a_partial_read_keeps_what_it_did_not_reach() {
        let mut c = Cursor::default();
        assert!(c.take_pushed(50));
        let after = c.read_after();
        assert_eq!(after, 0);
        assert!(c.take_read(5));
        // The next batch reads after 5 and finds 7, then 50 (pushed already).
        assert_eq!(read(&mut c, &[7, 50]), vec![7]);
        assert!(!c.take_pushed(50));
    }
}
