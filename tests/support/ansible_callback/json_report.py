"""A stdout callback that prints one JSON report of the whole run, for the tests to read.

ansible-core ships no JSON stdout callback (``json`` is ansible.posix's, from Galaxy, which this
machine cannot reach), so the tests bring this one. Its report has the json callback's shape:
``{"plays": [{"play": {"name"}, "tasks": [{"task": {"name"}, "hosts": {HOST: RESULT}}]}],
"stats": {HOST: {"ok", "changed", "failures", ...}}}``, where RESULT is what the module returned
(its ``diff`` included), with ``failed``/``skipped``/``unreachable`` set as the play saw it.
"""

from __future__ import annotations

import json

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = """
    name: json_report
    type: stdout
    short_description: One JSON report of the run (venvkeeper's tests)
    description:
      - Prints the plays, their tasks' results per host, and the stats as one JSON object.
"""


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "stdout"
    CALLBACK_NAME = "json_report"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.plays = []

    def v2_playbook_on_play_start(self, play):
        self.plays.append({"play": {"name": play.get_name()}, "tasks": []})

    def _task_entry(self, task):
        tasks = self.plays[-1]["tasks"]
        if not tasks or tasks[-1]["task"]["uuid"] != task._uuid:
            tasks.append({"task": {"name": task.get_name(), "uuid": task._uuid}, "hosts": {}})
        return tasks[-1]

    def v2_playbook_on_task_start(self, task, is_conditional):
        self._task_entry(task)

    def v2_playbook_on_handler_task_start(self, task):
        self._task_entry(task)

    def _record(self, result, **flags):
        data = self._dump_results(result.result, serialize=False)
        if "diff" in result.result:  # _dump_results leaves the diff out below -vvv
            data["diff"] = result.result["diff"]
        data.update(flags)
        self._task_entry(result.task)["hosts"][result.host.get_name()] = data

    def v2_runner_on_ok(self, result):
        self._record(result)

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._record(result, failed=True, ignored=ignore_errors)

    def v2_runner_on_skipped(self, result):
        self._record(result, skipped=True)

    def v2_runner_on_unreachable(self, result):
        self._record(result, unreachable=True)

    def v2_playbook_on_stats(self, stats):
        report = {
            "plays": self.plays,
            "stats": {host: stats.summarize(host) for host in sorted(stats.processed)},
        }
        self._display.display(json.dumps(report, indent=2, default=str, sort_keys=True))
