#if os(Linux)
import CShuttleSplice
import Glibc

/// One direction of a spliced connection: bytes read from `source` into a
/// pipe, and from the pipe out to `sink`. The pipe is filled only when
/// empty and emptied only while the sink takes bytes, so a sink that does
/// not read stops the source: at most one pipe of bytes waits in the proxy.
///
/// Until a read fills the loop's scratch buffer, a direction copies instead
/// (read, then send): for a short message that is as many system calls as
/// two splices but cheaper ones, and a short read says the socket is empty,
/// which saves the read that would only say EAGAIN. What the sink does not
/// take goes into the pipe, and from there on as if spliced.
struct SpliceDirection {
    var source: Int32 = -1
    var sink: Int32 = -1
    private(set) var pipe: SplicePipe?
    /// Bytes in the pipe, not yet written to the sink.
    private(set) var inPipe = 0
    /// Edge-triggered readiness: set by epoll, cleared by EAGAIN.
    var sourceReadable = false
    var sinkWritable = false
    /// The source's peer closed its side (RDHUP, HUP): read on until 0.
    var sourceHangup = false
    /// A read filled the scratch buffer: bulk, spliced from now on.
    private(set) var splicing = false
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

    /// Moves what it can without blocking. `last`: the other direction is
    /// done, so the connection closes when this one is: the close sends the
    /// sink its end, without a shutdown first.
    mutating func move(pipes: PipePool, scratch: UnsafeMutableRawBufferPointer, now: UInt64, last: Bool) -> Outcome {
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
                    if !last { _ = shutdown(sink, Int32(SHUT_WR)) }
                }
                return .waiting
            }
            guard sourceReadable else {
                release(to: pipes)
                return .waiting
            }
            if rounds == 0 { return .turnOver }
            rounds -= 1
            if !splicing {
                let n = read(source, scratch.baseAddress, scratch.count)
                if n > 0 {
                    bytes += n
                    lastRead = now
                    var written = 0
                    if sinkWritable {
                        let m = send(sink, scratch.baseAddress, n, Int32(MSG_NOSIGNAL))
                        if m > 0 {
                            written = m
                            lastWrite = now
                        } else if m < 0 && errno == EAGAIN {
                            sinkWritable = false
                        } else {
                            return .failed(describeErrno("send", m < 0 ? errno : EPIPE))
                        }
                    }
                    if written < n {
                        if pipe == nil {
                            guard let fresh = pipes.take() else { return .failed(describeErrno("pipe2", errno)) }
                            pipe = fresh
                        }
                        // An empty pipe holds at least two pages: the whole scratch buffer.
                        let rest = n - written
                        guard write(pipe!.write, scratch.baseAddress! + written, rest) == rest else {
                            return .failed(describeErrno("write", errno))
                        }
                        inPipe = rest
                    }
                    if n == scratch.count {
                        splicing = true
                    } else if !sourceHangup {
                        // A short read emptied the socket; more bytes will raise a new edge.
                        sourceReadable = false
                    }
                } else if n == 0 {
                    ended = true
                } else if errno == EAGAIN {
                    sourceReadable = false
                    release(to: pipes)
                    return .waiting
                } else {
                    return .failed(describeErrno("read", errno))
                }
                continue
            }
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
