#if os(Linux)
import CShuttleSplice
import Glibc

/// A kernel pipe: splice moves socket bytes into its write end and out of
/// its read end without copying them through user space.
struct SplicePipe {
    var read: Int32
    var write: Int32

    func close() {
        _ = Glibc.close(read)
        _ = Glibc.close(write)
    }
}

/// One relay thread's empty pipes, kept for the next direction that has
/// bytes to move: making a pipe and sizing it costs three system calls, and
/// an idle connection holds none.
final class PipePool {
    /// What each pipe is sized to hold (F_SETPIPE_SZ); the system may give less.
    static let pipeSize = 256 * 1024
    /// Empty pipes kept beyond this many are closed.
    static let capacity = 64

    private var empty: [SplicePipe] = []

    /// An empty pipe, or nil with errno set when none can be made.
    func take() -> SplicePipe? {
        if let pipe = empty.popLast() { return pipe }
        var fds: [Int32] = [-1, -1]
        guard cshuttle_pipe(&fds, Int32(Self.pipeSize)) == 0 else { return nil }
        return SplicePipe(read: fds[0], write: fds[1])
    }

    /// Takes back a pipe that holds nothing.
    func give(_ pipe: SplicePipe) {
        if empty.count < Self.capacity {
            empty.append(pipe)
        } else {
            pipe.close()
        }
    }

    func closeAll() {
        for pipe in empty { pipe.close() }
        empty.removeAll()
    }
}
#endif
