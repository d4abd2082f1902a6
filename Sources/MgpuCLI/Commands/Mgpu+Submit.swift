import ArgumentParser
import Foundation
import MgpuCore
import MgpuWire

extension Mgpu {
    struct Submit: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Queue a job. It runs through /bin/sh -c in this directory with this environment.",
            discussion: """
                mgpu submit --gpus 2 "python train.py --lr 3e-4"
                mgpu submit --gpus 1 -- python train.py --lr 3e-4
                mgpu submit --node-gpu-ids "node001:0,1;node002:0" "./run.sh"
                The job sees CUDA_VISIBLE_DEVICES (its GPUs on its node), CUDA_DEVICE_ORDER=PCI_BUS_ID,
                MGPU_JOB_ID and MGPU_NODE_ID.
                """)

        @OptionGroup var client: ClientOptions

        @Option(help: "GPUs on one node (0: a CPU-only job).")
        var gpus: Int = 1

        @Option(help: ArgumentHelp("Exact GPUs: \"NODE:GPU[,GPU...][;NODE:GPU...]\".", valueName: "list"))
        var nodeGpuIds: String?

        @Option(help: "A name for the job (default: the command's first word).")
        var name: String?

        @Option(help: "Seconds between SIGTERM and SIGKILL when the job is cancelled.")
        var killGrace: Double = 10

        @Argument(parsing: .captureForPassthrough, help: "The command: one quoted string, or words after --.")
        var command: [String] = []

        func validate() throws {
            if gpus < 0 { throw ValidationError("--gpus must be 0 or more, got \(gpus)") }
            if gpus > 1024 { throw ValidationError("--gpus \(gpus) is more than any node can have") }
            if killGrace < 0 || killGrace > 86_400 { throw ValidationError("--kill-grace must be 0-86400 s") }
            if commandText.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty {
                throw ValidationError("give a command, e.g. mgpu submit --gpus 1 \"python train.py\"")
            }
            if let nodeGpuIds, case .failure(let error) = PinnedGPUs.parseList(nodeGpuIds) { throw ValidationError(error.message) }
        }

        var commandText: String {
            var words = command
            if words.first == "--" { words.removeFirst() }
            if words.count == 1 { return words[0] }
            return words.map(Self.shellQuote).joined(separator: " ")
        }

        static func shellQuote(_ word: String) -> String {
            let safe = word.unicodeScalars.allSatisfy { CharacterSet.alphanumerics.contains($0) || "-_./=:,+@%".unicodeScalars.contains($0) }
            if safe && !word.isEmpty { return word }
            return "'" + word.replacingOccurrences(of: "'", with: "'\\''") + "'"
        }

        var request: ResourceRequest {
            if let nodeGpuIds, case .success(let pinned) = PinnedGPUs.parseList(nodeGpuIds) {
                return ResourceRequest(gpusPerNode: 0, nodes: pinned.count, pinned: pinned)
            }
            return ResourceRequest(gpusPerNode: gpus, nodes: 1)
        }

        func run() async throws {
            let spec = JobSpec(name: name, user: currentUser(), command: commandText,
                               workdir: FileManager.default.currentDirectoryPath,
                               environment: ProcessInfo.processInfo.environment, request: request, killGraceSeconds: killGrace)
            let ids = try await client.call { try await $0.submit([spec]) }
            for id in ids { say("Submitted job \(id)") }
        }
    }
}

func currentUser() -> String {
    if let pw = getpwuid(getuid()), let name = pw.pointee.pw_name { return String(cString: name) }
    return ProcessInfo.processInfo.environment["USER"] ?? "uid\(getuid())"
}
