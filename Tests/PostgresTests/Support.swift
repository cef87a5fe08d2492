import Foundation
import TestSupport
import Logging
import Postgres

let testLogger: Logger = {
    var logger = Logger(label: "postgres-tests")
    logger.logLevel = .warning
    return logger
}()

