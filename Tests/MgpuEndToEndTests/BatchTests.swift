import Foundation
import MgpuClient
import MgpuCore
import MgpuWire
import Testing

extension EndToEndTests {
    @Suite struct BatchTests {
        /// A Slurm user's script: #SBATCH lines become options (one mgpu lacks is a warning naming it), #MGPU lines
        /// are mgpu's own, options on the command line win, words after the script are its arguments, and it runs
        /// under its own #! interpreter (bash: `[[ ]]` works).
        @Test func sbatchReadsTheScriptsOptions() async throws {
            let cluster = try await TestCluster.start(agents: ["node001": 2])
            defer { cluster.stop() }
            let out = cluster.dir + "/batch.out"
            let script = cluster.dir + "/train.sh"
            try """
                #!/bin/bash
                #SBATCH --job-name=trainer
                #SBATCH --gres=gpu:2 --time=0:05:00   # two GPUs, five minutes
                #SBATCH --mem=4G
                #MGPU --nice 10

                if [[ "$1" == "a" ]]; then echo "args: $# $1|$2" > \(out); fi
                echo "gpus: $CUDA_VISIBLE_DEVICES" >> \(out)
                #SBATCH --gpus=1
                """.write(toFile: script, atomically: true, encoding: .utf8)
            let submitted = try await cluster.mgpu(["sbatch", "--time", "2", script, "a", "b c"])
            #expect(submitted.status == 0, "\(submitted.stderr)")
            #expect(submitted.stderr.contains("train.sh:4: #SBATCH --mem=4G is not supported by mgpu; ignored"), "\(submitted.stderr)")
            let line = try #require(submitted.stdout.split(separator: "\n").first)
            let id = try #require(JobID(String(line.split(separator: " ").last ?? "")))
            let done = try await cluster.waitForState(id, [.completed, .failed])
            #expect(done.state == .completed && done.name == "trainer" && done.nice == 10, "\(done.reason ?? "")")
            #expect(done.timeLimit == 120, "--time on the command line wins over the script's")
            #expect(done.request.totalGPUs == 2, "a #SBATCH line after the first command is not a directive")
            #expect(try String(contentsOfFile: out, encoding: .utf8) == "args: 2 a|b c\ngpus: 0,1\n")

            // A directive mgpu refuses is one line naming the script.
            try "#!/bin/sh\n#SBATCH --time=soon\ntrue\n".write(toFile: script, atomically: true, encoding: .utf8)
            let bad = try await cluster.mgpu(["sbatch", script])
            #expect(bad.status != 0 && bad.stderr.contains("train.sh") && bad.stderr.contains("--time"), "\(bad.stderr)")
            let missing = try await cluster.mgpu(["sbatch", cluster.dir + "/nope.sh"])
            #expect(missing.status == 2 && missing.stderr.contains("cannot read the script"), "\(missing.stderr)")
        }
    }
}
