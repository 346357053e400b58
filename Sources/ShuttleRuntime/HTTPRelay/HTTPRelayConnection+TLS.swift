#if os(Linux)
import Glibc

/// The client's bytes, through TLS when the connection has it.
extension HTTPRelayConnection {
    /// Reads from the client into `queue`: read(2)'s contract.
    @inline(__always)
    func receive(into queue: ByteQueue, limit: Int) -> Int {
        guard let tls else { return queue.read(from: fd, limit: limit) }
        return queue.read(limit: limit) { tls.read($0, $1) }
    }

    /// Writes `queue` to the client: write(2)'s contract.
    @inline(__always)
    func send(from queue: ByteQueue) -> Int {
        guard let tls else { return queue.write(to: fd) }
        return queue.write { tls.write($0, $1) }
    }

    /// Takes the handshake as far as the socket lets it: whether it is done.
    /// A client that fails it, or leaves, is closed without a word, as the
    /// NIO path does (the reason is logged at debug level).
    func shakeHands(_ tls: TLSSession) -> Bool {
        switch tls.shakeHands() {
        case .done:
            idleSince = loop.now
            return true
        case .waitForReadable:
            readable = false
            return false
        case .waitForWritable:
            writable = false
            return false
        case .failed:
            driver.logger.debug("TLS handshake failed", metadata: ["client": "\(clientIP)", "reason": "\(tls.failure)"])
            finish()
            return false
        }
    }
}
#endif
