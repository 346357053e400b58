import Foundation
import ShuttleTestSupport
import Testing

/// The built `shuttle` binary run as a child process, as a user runs it.
final class DaemonProcess: Sendable {
    let process: ChildProcess

    /// The binary next to the test bundle (both are build products).
    static var binary: URL {
        let products = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        return products.appendingPathComponent("shuttle")
    }

    init(_ arguments: [String]) throws {
        process = try ChildProcess(Self.binary.path, arguments)
    }

    private init(process: ChildProcess) {
        self.process = process
    }

    /// The binary run with at most `limit` open descriptors (prlimit(1), of
    /// util-linux, which `.ci/run` installs).
    static func withDescriptorLimit(_ limit: Int, _ arguments: [String]) throws -> DaemonProcess {
        DaemonProcess(process: try ChildProcess("prlimit", ["--nofile=\(limit):\(limit)", "--", binary.path] + arguments))
    }

    /// The binary run with these variables added to its environment (env(1)).
    static func withEnvironment(_ variables: [String: String], _ arguments: [String]) throws -> DaemonProcess {
        let assignments = variables.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
        return DaemonProcess(process: try ChildProcess("env", assignments + [binary.path] + arguments))
    }

    /// The user and group that an unprivileged daemon runs as: nobody.
    static let unprivilegedID = 65534

    /// The binary run as a user without privileges, as a production daemon
    /// usually is. The tests run as root here (CI installs packages), so it
    /// is started through setpriv(1) as nobody, from a copy in `directory`,
    /// which nobody can reach (the checkout may not be). Under another user
    /// already, it runs as that user.
    static func unprivileged(_ arguments: [String], copyingTo directory: URL) throws -> DaemonProcess {
        guard getuid() == 0 else { return try DaemonProcess(arguments) }
        let copy = directory.appendingPathComponent("shuttle")
        try FileManager.default.copyItem(at: binary, to: copy)
        for path in [directory.path, copy.path] { chmod(path, 0o755) }
        let id = String(unprivilegedID)
        return DaemonProcess(
            process: try ChildProcess(
                "setpriv", ["--reuid=\(id)", "--regid=\(id)", "--clear-groups", "--", copy.path] + arguments))
    }

    /// The real user id the daemon runs as, from /proc.
    var userID: Int? {
        guard let status = try? String(contentsOfFile: "/proc/\(process.pid)/status", encoding: .utf8),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix("Uid:") })
        else { return nil }
        return line.split(whereSeparator: { $0 == "\t" || $0 == " " }).dropFirst().first.flatMap { Int($0) }
    }

    /// What the daemon has written to standard error so far.
    var stderr: String { process.standardError }

    /// Runs the binary to completion; returns its exit status and standard error.
    static func run(_ arguments: [String]) throws -> (status: Int32, stderr: String) {
        let daemon = try DaemonProcess(arguments)
        let status = daemon.process.waitUntilExit()
        return (status, daemon.stderr)
    }

    /// The admin API's port, read from the "admin API listening" log line.
    func adminPort(timeout: Duration = .seconds(60)) async throws -> Int {
        try await listeningPort("admin API listening", timeout: timeout)
    }

    /// The port in the `address=` of the first log line containing `marker`.
    func listeningPort(_ marker: String, timeout: Duration = .seconds(60)) async throws -> Int {
        let deadline = ContinuousClock.now + timeout
        var lastLook = false
        // One more look after the deadline: a busy machine may have kept
        // this task from running for a while.
        while !lastLook {
            lastLook = ContinuousClock.now >= deadline
            let log = stderr
            if let line = log.split(separator: "\n").first(where: { $0.contains(marker) }),
                let range = line.range(of: #"address=[^ ]*:(\d+)"#, options: .regularExpression),
                let port = Int(line[range].split(separator: ":").last ?? "")
            {
                return port
            }
            guard process.isRunning else { break }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw RawHTTPClient.Failure(description: "no \"\(marker)\" line; standard error:\n" + stderr)
    }

    /// Sends a signal (SIGHUP: reload the certificates).
    func signal(_ number: Int32) { process.signal(number) }

    func terminate() { process.signal(SIGTERM) }

    /// Waits for the process to exit; nil if it is still running at the deadline.
    func waitForExit(timeout: Duration = .seconds(30)) async -> Int32? {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let status = process.terminationStatus { return status }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return nil
    }
}

/// Runs curl; returns its exit status, standard output and standard error.
func curl(_ arguments: [String]) throws -> (status: Int32, output: String, error: String) {
    let process = try ChildProcess("curl", ["--silent", "--show-error", "--max-time", "20"] + arguments, keepOutput: true)
    let status = process.waitUntilExit()
    return (status, process.standardOutput, process.standardError)
}

/// A scratch directory for one test.
func temporaryDirectory() throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("shuttle-e2e-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

/// One admin call over a fresh connection.
func admin(_ port: Int, _ method: String, _ path: String, body: String? = nil) throws -> RawHTTPResponse {
    let client = try RawHTTPClient(port: port)
    defer { client.close() }
    return try client.request(method, path, body: body, headers: [("Connection", "close")])
}

/// A config file with one TCP service `echo` on a free port and one backend.
func configFile(in directory: URL, backendPort: Int) throws -> URL {
    let url = directory.appendingPathComponent("config.json")
    let json = """
        {"services": [{"name": "echo", "address": "127.0.0.1:0",
          "backends": [{"name": "one", "address": "127.0.0.1:\(backendPort)"}]}]}
        """
    try json.write(to: url, atomically: false, encoding: .utf8)
    return url
}

/// The port a service's listener got, from its stats.
func listenPort(admin port: Int, service: String) throws -> Int {
    let stats = try admin(port, "GET", "/\(service)").object()
    let address = try #require(stats["listen_address"] as? String)
    return try #require(Int(address.split(separator: ":").last ?? ""))
}
