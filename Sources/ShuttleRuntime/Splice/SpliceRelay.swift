#if os(Linux)
import Glibc
import Synchronization

/// The splice relay's threads: each accepts from every splice listener
/// and relays the connections it accepted.
final class SpliceRelay: Sendable {
    let loops: [SpliceLoop]
    private let turn = Atomic<Int>(0)

    init(threads: Int) throws {
        // splice and send to a peer that reset would raise it (SwiftNIO
        // ignores it too, once it makes a socket).
        _ = signal(SIGPIPE, SIG_IGN)
        var loops: [SpliceLoop] = []
        for _ in 0..<max(1, threads) { loops.append(try SpliceLoop()) }
        self.loops = loops
        for (index, loop) in loops.enumerated() { loop.start(name: "shuttle-relay-\(index)") }
    }

    /// The loop whose turn it is to take a UDP service.
    func nextLoop() -> SpliceLoop {
        loops[turn.wrappingAdd(1, ordering: .relaxed).oldValue % loops.count]
    }

    /// Closes every connection and ends the threads.
    func shutdown() {
        for loop in loops { loop.stop() }
    }
}

enum SpliceError: Error, CustomStringConvertible {
    case system(String)
    var description: String {
        switch self {
        case .system(let text): return text
        }
    }
}
#endif
