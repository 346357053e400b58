#if os(Linux)
import CShuttleSplice
import Glibc

/// One direction of a spliced connection: bytes read from `source` into a
/// pipe, and from the pipe out to `sink`. The pipe is filled only when
/// empty and emptied only while the sink takes bytes, so a sink that does
/// not read stops the source: at most one pipe of bytes waits in the proxy.
struct SpliceDirection {
    var source: Int32 = -1
    var sink: Int32 = -1
    private(set) var pipe: SplicePipe?
    /// Bytes in the pipe, not yet written to the sink.
    private(set) var inPipe = 0
    /// Edge-triggered readiness: set by epoll, cleared by EAGAIN.
    var sourceReadable = false
    var sinkWritable = false
    /// The source's end of input was read.
    private(set) var ended = false
    /// The sink was shut down for writing (after the source ended and the
    /// pipe drained): this direction is done.
    private(set) var done = false
    /// Bytes read from the source.
    private(set) var bytes = 0
    /// When the source was last read from and the sink last written to.
    private(set) var lastRead: UInt64 = 0
    private(set) var lastWrite: UInt64 = 0

    enum Outcome {
        /// Waiting for readiness (or done).
        case waiting
        /// Still has bytes to move, but its turn is over.
        case turnOver
        /// A system call failed: the connection ends.
        case failed(String)
    }

    /// How many pipe-fulls one turn moves before letting other connections go.
    static let roundsPerTurn = 16

    init(source: Int32, sink: Int32, now: UInt64) {
        self.source = source
        self.sink = sink
        lastRead = now
        lastWrite = now
    }

    init() {}

    /// Moves what it can without blocking.
    mutating func move(pipes: PipePool, now: UInt64) -> Outcome {
        var rounds = Self.roundsPerTurn
        while true {
            while inPipe > 0 {
                guard sinkWritable, let pipe else { return .waiting }
                let n = cshuttle_splice(pipe.read, sink, inPipe)
                if n > 0 {
                    inPipe -= n
                    lastWrite = now
                } else if n < 0 && errno == EAGAIN {
                    sinkWritable = false
                    return .waiting
                } else {
                    return .failed(describeErrno("splice", n < 0 ? errno : EPIPE))
                }
            }
            if ended {
                if !done {
                    done = true
                    release(to: pipes)
                    // A peer that is already gone fails its other direction.
                    _ = shutdown(sink, Int32(SHUT_WR))
                }
                return .waiting
            }
            guard sourceReadable else {
                release(to: pipes)
                return .waiting
            }
            if rounds == 0 { return .turnOver }
            rounds -= 1
            if pipe == nil {
                guard let fresh = pipes.take() else { return .failed(describeErrno("pipe2", errno)) }
                pipe = fresh
            }
            let n = cshuttle_splice(source, pipe!.write, PipePool.pipeSize)
            if n > 0 {
                inPipe = n
                bytes += n
                lastRead = now
            } else if n == 0 {
                ended = true
            } else if errno == EAGAIN {
                sourceReadable = false
                release(to: pipes)
                return .waiting
            } else {
                return .failed(describeErrno("splice", errno))
            }
        }
    }

    /// An empty pipe goes back to the pool; one with bytes in it is closed.
    mutating func release(to pipes: PipePool) {
        guard let pipe else { return }
        self.pipe = nil
        if inPipe == 0 {
            pipes.give(pipe)
        } else {
            pipe.close()
            inPipe = 0
        }
    }
}
#endif
