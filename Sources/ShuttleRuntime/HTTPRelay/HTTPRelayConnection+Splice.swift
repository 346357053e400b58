#if os(Linux)
import CShuttleSplice
import Glibc

/// Large counted bodies, moved between a plain-HTTP client and its backend
/// with splice(2) through a pipe, as the TCP relay moves bulk bytes: the
/// kernel hands the pages on, and the body never passes through user space.
/// An answer's body goes from the backend to the client (`bodyPipe`), a
/// request's from the client to the backend (`uploadPipe`). What the first
/// read brought in (the head and the start of the body) goes out through the
/// queues first; a pipe is emptied to its socket only once the queue is.
extension HTTPRelayConnection {
    /// A pipe a body is spliced through, and how many of its bytes are in it.
    struct BodyPipe {
        let pipe: SplicePipe
        var count = 0

        /// What one splice did.
        enum Step {
            case moved
            /// EAGAIN: the socket has nothing to give, or no room.
            case wouldBlock
            /// The socket's end, or an error (errno set when `failed`).
            case ended(failed: Bool)
        }

        /// Splices up to `limit` bytes from `source` into the pipe, which
        /// must be empty: so EAGAIN can only mean the socket has nothing (a
        /// full pipe would say the same).
        mutating func fill(from source: Int32, limit: UInt64) -> (step: Step, bytes: Int) {
            assert(count == 0)
            let n = cshuttle_splice(source, pipe.write, Int(min(limit, UInt64(PipePool.pipeSize))))
            if n > 0 {
                count = n
                return (.moved, n)
            }
            return (n < 0 && errno == EAGAIN ? .wouldBlock : .ended(failed: n < 0), 0)
        }

        /// Splices what the pipe holds out to `sink`.
        mutating func drain(to sink: Int32) -> Step {
            let n = cshuttle_splice(pipe.read, sink, count)
            if n > 0 {
                count -= n
                return .moved
            }
            return n < 0 && errno == EAGAIN ? .wouldBlock : .ended(failed: n < 0)
        }

        /// Back to the loop's pool when empty; closed with the bytes in it
        /// when the connection ends before they were written.
        func release(to pipes: PipePool) {
            if count == 0 {
                pipes.give(pipe)
            } else {
                pipe.close()
            }
        }
    }

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
        bodyPipe = BodyPipe(pipe: pipe)
    }

    /// Moves the body on: from the pipe to the client while it takes bytes
    /// (after `outbox`), and from the backend into the pipe once it is
    /// empty. Whether anything moved.
    func spliceResponseBody(_ exchange: HTTPRelayExchange, _ backend: HTTPRelayBackend) -> Bool {
        guard bodyPipe != nil else { return false }
        var moved = false
        if bodyPipe!.count > 0 && writable && outbox.isEmpty {
            switch bodyPipe!.drain(to: fd) {
            case .moved: moved = true
            case .wouldBlock: writable = false
            case .ended:
                clientGone()
                return true
            }
        }
        if bodyPipe!.count == 0 && exchange.responseRemaining > 0 && backend.readable && !backend.ended {
            let (step, bytes) = bodyPipe!.fill(from: backend.fd, limit: exchange.responseRemaining)
            switch step {
            case .moved:
                exchange.responseRemaining -= UInt64(bytes)
                exchange.bytesReceived += bytes
                moved = true
            case .wouldBlock: backend.readable = false
            case .ended(let failed):
                // Its end (or an error) before the whole body: said once the pipe is empty.
                backend.ended = true
                if failed { backend.error = describeErrno("splice", errno) }
                moved = true
            }
        }
        guard bodyPipe!.count == 0 else { return moved }
        if exchange.responseRemaining == 0 {
            releaseBodyPipe()
            // The body was taken to its last byte, and no further: anything
            // after it (or the backend's end) is still in the socket, where
            // the next request's answer would be read from. A look says
            // whether the connection is clean enough to reuse; if it is, the
            // read that would find EAGAIN is spared.
            if backend.isQuiet {
                backend.readable = false
            } else {
                exchange.backendReusable = false
            }
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

    func releaseBodyPipe() {
        bodyPipe?.release(to: loop.pipes)
        bodyPipe = nil
    }

    // MARK: Request bodies

    /// A request body is spliced from this much still to come: what a
    /// retry could keep (`replayLimit`); a larger one is not kept anyway.
    static let uploadSpliceThreshold = UInt64(HTTPProxyHandler.replayLimit)

    /// Takes a pipe for the rest of `exchange`'s counted request body if that
    /// is large, the client is not on TLS, and a pipe can be had.
    func startUploadSplicing(_ exchange: HTTPRelayExchange, _ backend: HTTPRelayBackend) {
        guard tls == nil, uploadPipe == nil, !clientEnded, !backend.ended,
            exchange.remaining >= Self.uploadSpliceThreshold, let pipe = loop.pipes.take()
        else { return }
        uploadPipe = BodyPipe(pipe: pipe)
        exchange.replay = nil  // no retry: the body is not kept
    }

    /// Moves the request body on: from the pipe to the backend while it takes
    /// bytes (after its outbox), and from the client into the pipe once it is
    /// empty. A backend that goes away or answered already (the rest of the
    /// body is then read and dropped) ends the splicing. Whether anything moved.
    func spliceRequestBody() -> Bool {
        guard uploadPipe != nil else { return false }
        guard let exchange, exchange.isForwarding, exchange.attached, let backend = exchange.backend, !backend.ended
        else {
            releaseUploadPipe()
            return true
        }
        var moved = false
        if uploadPipe!.count > 0 && backend.writable && backend.outbox.isEmpty {
            switch uploadPipe!.drain(to: backend.fd) {
            case .moved: moved = true
            case .wouldBlock: backend.writable = false
            case .ended:
                // Reset, as `flushBackend` takes it: its reading side says the rest.
                backend.ended = true
                backend.readable = true
                releaseUploadPipe()
                return true
            }
        }
        if uploadPipe!.count == 0 && exchange.remaining > 0 && readable {
            let (step, bytes) = uploadPipe!.fill(from: fd, limit: exchange.remaining)
            switch step {
            case .moved:
                exchange.remaining -= UInt64(bytes)
                exchange.bytesSent += bytes
                moved = true
            case .wouldBlock: readable = false
            case .ended:
                // The client's end (or an error) in the middle of its body, as `readClient` takes it.
                readable = false
                clientEnded = true
                clientGone()
                return true
            }
        }
        if uploadPipe!.count == 0 && exchange.remaining == 0 {
            releaseUploadPipe()
            exchange.requestEnded = true
            startResponseTimer(exchange)
            return true
        }
        return moved
    }

    func releaseUploadPipe() {
        uploadPipe?.release(to: loop.pipes)
        uploadPipe = nil
    }
}
#endif
