import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import ShuttleModel

/// Runs one backend's health check: a TCP connect to its check address
/// every interval, each result sent to the model.
final class HealthChecker: Sendable {
    let check: HealthCheck
    let driver: Driver
    let task = NIOLockedValueBox<RepeatedTask?>(nil)
    let stopped = NIOLockedValueBox(false)

    init(check: HealthCheck, driver: Driver) {
        self.check = check
        self.driver = driver
    }

    func start() {
        let loop = driver.control
        let repeated = loop.scheduleRepeatedAsyncTask(
            initialDelay: .zero, delay: .milliseconds(Int64(max(1, check.interval)))
        ) { _ in
            self.probe()
        }
        task.withLockedValue { $0 = repeated }
    }

    func stop() {
        stopped.withLockedValue { $0 = true }
        task.withLockedValue { $0 }?.cancel()
    }

    /// One connect; always succeeds as a future, reporting the result.
    func probe() -> EventLoopFuture<Void> {
        let loop = driver.control
        guard case .success(let target) = HostPort.parse(check.address, listening: false) else {
            return loop.makeSucceededVoidFuture()
        }
        return ClientBootstrap(group: loop)
            .connectTimeout(.milliseconds(Int64(max(1, check.timeout))))
            .channelInitializer { _ in loop.makeSucceededVoidFuture() }
            .connect(host: target.hostString, port: target.port)
            .flatMap { channel in channel.close().map { true }.recover { _ in true } }
            .recover { _ in false }
            .map { passed in
                guard !self.stopped.withLockedValue({ $0 }) else { return }
                self.driver.perform(self.driver.send(.checkResult(self.check.backend, passed: passed)))
            }
    }
}
