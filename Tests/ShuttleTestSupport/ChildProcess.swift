#if canImport(Glibc)
import Foundation
import Glibc
import NIOConcurrencyHelpers

/// A program run as a child of the tests, started with posix_spawn(3).
///
/// Foundation's `Process.run()` on Linux crashes now and then while it lists
/// /proc/self/fd (it copies 256 bytes out of each directory entry, past the
/// end of glibc's buffer: swift-corelibs-foundation pull request 5472, not
/// in the 6.3 toolchain). The more descriptors a process holds, the likelier
/// it is, and these tests hold thousands: it brought the whole test run down.
public final class ChildProcess: Sendable {
    public let pid: pid_t
    private let state = NIOLockedValueBox(State())

    private struct State {
        var status: Int32?
        var output: [UInt8] = []
        var error: [UInt8] = []
        var readersLeft = 0
    }

    /// Starts `executable` (a path, or a name looked up in PATH) with
    /// `arguments`. Standard input is /dev/null; standard output is kept
    /// (`keepOutput`) or sent to /dev/null; standard error is kept.
    public init(_ executable: String, _ arguments: [String], keepOutput: Bool = false) throws {
        var errorPipe: [Int32] = [-1, -1]
        var outputPipe: [Int32] = [-1, -1]
        guard Self.pipe2(&errorPipe, O_CLOEXEC) == 0 else { throw Failure.system("pipe2", errno) }
        if keepOutput {
            guard Self.pipe2(&outputPipe, O_CLOEXEC) == 0 else {
                let failure = errno
                close(errorPipe[0])
                close(errorPipe[1])
                throw Failure.system("pipe2", failure)
            }
        }

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        if keepOutput {
            posix_spawn_file_actions_adddup2(&actions, outputPipe[1], 1)
        } else {
            posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        }
        posix_spawn_file_actions_adddup2(&actions, errorPipe[1], 2)
        // Every other descriptor of the tests is close-on-exec; closefrom
        // makes sure, where glibc has it (2.34 and later).
        if let closeFrom = Self.addCloseFrom { _ = closeFrom(&actions, 3) }

        // The child starts with no signal blocked and every signal at its
        // default (the tests ignore SIGPIPE, as SwiftNIO does).
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var all = sigset_t()
        sigfillset(&all)
        var none = sigset_t()
        sigemptyset(&none)
        posix_spawnattr_setsigdefault(&attributes, &all)
        posix_spawnattr_setsigmask(&attributes, &none)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK))

        let argv: [UnsafeMutablePointer<CChar>?] = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { for argument in argv { free(argument) } }
        var child: pid_t = 0
        let result = posix_spawnp(&child, executable, &actions, &attributes, argv, environ)
        close(errorPipe[1])
        if keepOutput { close(outputPipe[1]) }
        guard result == 0 else {
            close(errorPipe[0])
            if keepOutput { close(outputPipe[0]) }
            throw Failure.system("posix_spawn \(executable)", result)
        }
        pid = child
        state.withLockedValue { $0.readersLeft = keepOutput ? 2 : 1 }
        read(errorPipe[0]) { $0.error += $1 }
        if keepOutput { read(outputPipe[0]) { $0.output += $1 } }
    }

    /// Reads `fd` to its end on a thread of its own, then closes it.
    private func read(_ fd: Int32, into keep: @escaping @Sendable (inout State, ArraySlice<UInt8>) -> Void) {
        let state = self.state
        Thread.detachNewThread {
            var buffer = [UInt8](repeating: 0, count: 65536)
            while true {
                let count = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
                if count < 0 && errno == EINTR { continue }
                guard count > 0 else { break }
                state.withLockedValue { keep(&$0, buffer[..<count]) }
            }
            close(fd)
            state.withLockedValue { $0.readersLeft -= 1 }
        }
    }

    /// The exit status (the signal's number if a signal ended it), once it
    /// has exited; nil while it runs.
    public var terminationStatus: Int32? {
        state.withLockedValue { state in
            if state.status == nil { state.status = Self.reap(pid, options: WNOHANG) }
            return state.status
        }
    }

    public var isRunning: Bool { terminationStatus == nil }

    /// Waits for the child to exit and for the end of what it wrote.
    @discardableResult
    public func waitUntilExit() -> Int32 {
        // Polled: the child is reaped only under the lock, by whichever
        // thread asks first.
        var status = terminationStatus
        while status == nil {
            usleep(2_000)
            status = terminationStatus
        }
        while state.withLockedValue({ $0.readersLeft > 0 }) { usleep(2_000) }
        return status ?? -1
    }

    public var standardError: String { state.withLockedValue { String(decoding: $0.error, as: UTF8.self) } }
    public var standardOutput: String { state.withLockedValue { String(decoding: $0.output, as: UTF8.self) } }

    public func signal(_ number: Int32) { kill(pid, number) }

    deinit {
        if isRunning {
            kill(pid, SIGKILL)
            _ = Self.reap(pid, options: 0)
        }
    }

    /// waitpid: the exit status, or nil if the child still runs (WNOHANG).
    private static func reap(_ pid: pid_t, options: Int32) -> Int32? {
        var status: Int32 = 0
        var result: pid_t
        repeat { result = waitpid(pid, &status, options) } while result < 0 && errno == EINTR
        guard result == pid else { return nil }
        // WIFEXITED / WEXITSTATUS / WTERMSIG, which are C macros.
        return status & 0x7f == 0 ? (status >> 8) & 0xff : status & 0x7f
    }

    /// pipe2(2), which Swift's Glibc module does not show: a pipe made
    /// close-on-exec at once, so that no child spawned meanwhile by another
    /// test holds its write end (its reader would wait for that child too).
    private static let pipe2: @convention(c) (UnsafeMutablePointer<Int32>, Int32) -> Int32 = {
        guard let symbol = dlsym(dlopen(nil, RTLD_NOW), "pipe2") else { fatalError("glibc without pipe2") }
        return unsafeBitCast(symbol, to: (@convention(c) (UnsafeMutablePointer<Int32>, Int32) -> Int32).self)
    }()

    /// glibc's posix_spawn_file_actions_addclosefrom_np, which Swift's
    /// Glibc module does not show; nil before glibc 2.34.
    private static let addCloseFrom: (@convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32)? = {
        guard let symbol = dlsym(dlopen(nil, RTLD_NOW), "posix_spawn_file_actions_addclosefrom_np") else { return nil }
        return unsafeBitCast(
            symbol, to: (@convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32).self)
    }()

    public enum Failure: Error, CustomStringConvertible {
        case system(String, Int32)
        public var description: String {
            switch self {
            case .system(let call, let code): return "\(call): \(String(cString: strerror(code)))"
            }
        }
    }
}
#endif
