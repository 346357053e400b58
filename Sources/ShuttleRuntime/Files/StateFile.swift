import Dispatch
import FoundationEssentials
import Logging
import NIOConcurrencyHelpers
import ShuttleModel

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// The `-state` file: written after every change of the configuration,
/// atomically (temporary file in the same directory, fsync, rename) and
/// only when its content changed. Writes happen in order, off the event loops.
public final class StateFile: Sendable {
    public let path: String
    let queue = DispatchQueue(label: "shuttle.state-file")
    /// What the file holds now, as far as we know (set on load and write).
    let lastWritten = NIOLockedValueBox<Data?>(nil)

    public init(path: String) {
        self.path = path
    }

    /// Writes `config` unless the file already holds exactly this.
    public func write(_ config: Config, logger: Logger) {
        var encoded = ConfigCoding.encode(config)
        encoded.append(UInt8(ascii: "\n"))
        let data = encoded
        queue.async {
            if self.lastWritten.withLockedValue({ $0 == data }) { return }
            do {
                try Self.writeAtomically(data, to: self.path)
                self.lastWritten.withLockedValue { $0 = data }
                logger.debug("state written", metadata: ["file": "\(self.path)"])
            } catch {
                logger.error("cannot write state file", metadata: ["file": "\(self.path)", "error": "\(error)"])
            }
        }
    }

    /// Waits until every write asked for so far is done.
    public func flush() {
        queue.sync {}
    }

    /// Replaces `path` with `data` so that a reader or a crash sees either
    /// the old file or the new one, never a part.
    public static func writeAtomically(_ data: Data, to path: String) throws {
        let directory = FileWrites.directory(of: path)
        let temporary = (directory.isEmpty ? "." : directory) + "/.\(FileWrites.lastComponent(of: path)).tmp-\(getpid())"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw FileError(path: temporary, operation: "open", code: errno) }
        var ok = false
        defer {
            if !ok { unlink(temporary) }
        }
        if let code = data.withUnsafeBytes({ FileWrites.writeAll(fd, $0) }) {
            close(fd)
            throw FileError(path: temporary, operation: "write", code: code)
        }
        if fsync(fd) != 0 {
            let code = errno
            close(fd)
            throw FileError(path: temporary, operation: "fsync", code: code)
        }
        close(fd)
        guard rename(temporary, path) == 0 else { throw FileError(path: path, operation: "rename", code: errno) }
        ok = true
        let dirfd = open(directory.isEmpty ? "." : directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dirfd >= 0 {
            fsync(dirfd)
            close(dirfd)
        }
    }

    /// What was found at `path` at start-up.
    public enum Loaded {
        case missing
        case config(Config, warnings: [ConfigProblem])
        /// Unreadable, not JSON, or not a valid config: kept aside under `keptAs`.
        case corrupt(reason: String, keptAs: String?)
    }

    /// Reads the state file. A file that cannot be used is renamed with a
    /// `.corrupt-TIMESTAMP` suffix so that nothing is lost.
    public func load(now: Date = Date()) -> Loaded {
        guard FileManager.default.fileExists(atPath: path) else { return .missing }
        let reason: String
        if let data = FileManager.default.contents(atPath: path) {
            switch ConfigFile.parse(data) {
            case .success(let (config, warnings)):
                lastWritten.withLockedValue { $0 = data }
                return .config(config, warnings: warnings)
            case .failure(let problems):
                reason = problems.problems.map(\.description).joined(separator: "; ")
            }
        } else {
            reason = "cannot be read"
        }
        let stamp = Int(now.timeIntervalSince1970)
        let aside = "\(path).corrupt-\(stamp)"
        let kept = rename(path, aside) == 0 ? aside : nil
        return .corrupt(reason: reason, keptAs: kept)
    }
}

/// Reading a config file: decode, then validate; every problem at once.
public enum ConfigFile {
    public static func parse(_ data: Data) -> Result<(Config, [ConfigProblem]), ConfigFileProblems> {
        let decoded = ConfigCoding.decodeConfig(data)
        guard let update = decoded.value else {
            return .failure(ConfigFileProblems(problems: decoded.problems))
        }
        // Type errors and validation problems together: every problem at once.
        let config = update.config
        let problems = decoded.problems + Validation.validate(config)
        guard problems.isEmpty else { return .failure(ConfigFileProblems(problems: problems)) }
        return .success((config.canonical, decoded.warnings))
    }

    public static func load(path: String) -> Result<(Config, [ConfigProblem]), ConfigFileProblems> {
        guard let data = FileManager.default.contents(atPath: path) else {
            return .failure(ConfigFileProblems(problems: [ConfigProblem(path: "", reason: "\(path) cannot be read")]))
        }
        return parse(data)
    }
}

public struct ConfigFileProblems: Error, Sendable {
    public var problems: [ConfigProblem]
}

struct FileError: Error, CustomStringConvertible {
    var path: String
    var operation: String
    var code: Int32
    var description: String { "\(operation) \(path): \(String(cString: strerror(code)))" }
}
