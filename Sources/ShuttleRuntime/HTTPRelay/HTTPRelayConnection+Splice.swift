#if os(Linux)
import CShuttleSplice
import Glibc

/// A large answer's body, moved from the backend to a plain-HTTP client
/// with splice(2) through a pipe, as the TCP relay moves bulk bytes: the
/// kernel hands the backend's pages on, and the body never passes through
/// user space. What the answer's first read brought in (the head and the
/// start of the body) goes out through `outbox` first; the pipe is emptied
/// to the client only once `outbox` is.
extension HTTPRelayConnection {
    /// A `Content-Length` body with at least this much still to come after
    /// the first read is spliced; a smaller one is cheaper to read and write.
    static let spliceThreshold: UInt64 = 32 * 1024

    /// Takes a pipe for the rest of `exchange`'s counted body if that is
    /// large, the client is not on TLS, and a pipe can be had; else the body
    /// goes on through the queues. Called once what was read of it is handled.
    func startSplicing(_ exchange: HTTPRelayExchange, _ backend: HTTPRelayBackend) {
        guard tls == nil, bodyPipe == nil, !backend.ended, exchange.responseRemaining >= Self.spliceThreshold,
            let pipe = loop.pipes.take()
        else { return }
        bodyPipe = pipe
    }

    /// Moves the body on: from the pipe to the client while it takes bytes
    /// (after `outbox`), and from the backend into the pipe once it is empty
    /// (so that EAGAIN can only mean the backend has nothing; a pipe that was
    /// full would say the same). Whether anything moved.
    func spliceResponseBody(_ exchange: HTTPRelayExchange, _ backend: HTTPRelayBackend) -> Bool {
        guard let pipe = bodyPipe else { return false }
        var moved = false
        if inPipe > 0 && writable && outbox.isEmpty {
            let n = cshuttle_splice(pipe.read, fd, inPipe)
            if n > 0 {
                inPipe -= n
                moved = true
            } else if n < 0 && errno == EAGAIN {
                writable = false
            } else {
                clientGone()
                return true
            }
        }
        if inPipe == 0 && exchange.responseRemaining > 0 && backend.readable && !backend.ended {
            let n = cshuttle_splice(backend.fd, pipe.write, Int(min(exchange.responseRemaining, UInt64(PipePool.pipeSize))))
            if n > 0 {
                inPipe = n
                exchange.responseRemaining -= UInt64(n)
                exchange.bytesReceived += n
                moved = true
            } else if n < 0 && errno == EAGAIN {
                backend.readable = false
            } else {
                // Its end (or an error) before the whole body: said once the pipe is empty.
                backend.ended = true
                if n < 0 { backend.error = describeErrno("splice", errno) }
                moved = true
            }
        }
        guard inPipe == 0 else { return moved }
        if exchange.responseRemaining == 0 {
            releaseBodyPipe()
            endResponse(exchange)
            return true
        }
        if backend.ended {
            releaseBodyPipe()
            backendBrokeOff(exchange, reason: backend.error ?? "the backend closed the connection")
            return true
        }
        return moved
    }

    /// The pipe goes back to the loop's pool when empty, and is closed with
    /// the bytes in it when the connection ends before they were written.
    func releaseBodyPipe() {
        guard let pipe = bodyPipe else { return }
        bodyPipe = nil
        if inPipe == 0 {
            loop.pipes.give(pipe)
        } else {
            pipe.close()
            inPipe = 0
        }
    }
}
#endif
