"""Failure logs from public issue trackers (part E), as labelled for bench/rca."""

ENTRIES = [
    dict(
        source="https://github.com/apache/airflow/issues/19635",
        cls="killed",
        fix="check-orchestrator-kill",
        log="""[2022-01-24, 16:18:18 UTC] {local_task_job.py:211} WARNING - State of this instance has been externally set to success. Terminating instance.
[2022-01-24, 16:18:18 UTC] {process_utils.py:120} INFO - Sending Signals.SIGTERM to group 553436. PIDs of all processes in the group: [553436]
[2022-01-24, 16:18:18 UTC] {process_utils.py:75} INFO - Sending the signal Signals.SIGTERM to group 553436
[2022-01-24, 16:18:18 UTC] {taskinstance.py:1408} ERROR - Received SIGTERM. Terminating subprocesses.
[2022-01-24, 16:18:18 UTC] {subprocess.py:99} INFO - Sending SIGTERM signal to process group
[2022-01-24, 16:18:18 UTC] {process_utils.py:70} INFO - Process psutil.Process(pid=553436, status='terminated', exitcode=1, started='16:17:01') (553436) terminated with exit code 1""",
    ),
    dict(
        source="https://github.com/apache/airflow/issues/38113",
        cls="killed",
        fix="check-orchestrator-kill",
        log="""[2024-03-13, 15:19:53 UTC] {local_task_job.py:260} WARNING - Recorded pid 248 does not match the current pid 249
[2024-03-13, 15:19:53 UTC] {process_utils.py:133} INFO - Sending Signals.SIGTERM to group 249. PIDs of all processes in the group: [253, 309, 249]
[2024-03-13, 15:19:53 UTC] {taskinstance.py:1488} ERROR - Received SIGTERM. Terminating subprocesses.
[2024-03-13, 15:19:53 UTC] {taskinstance.py:1776} ERROR - Task failed with exception
Traceback (most recent call last):
  File "/venv/lib/python3.7/site-packages/airflow/operators/bash.py", line 191, in execute
    cwd=self.cwd,
  File "/venv/lib/python3.7/site-packages/airflow/hooks/subprocess.py", line 91, in run_command
    for raw_line in iter(self.sub_process.stdout.readline, b""):
  File "/venv/lib/python3.7/site-packages/airflow/models/taskinstance.py", line 1490, in signal_handler
    raise AirflowException("Task received SIGTERM signal")
airflow.exceptions.AirflowException: Task received SIGTERM signal""",
    ),
    dict(
        source="https://github.com/apache/airflow/issues/40442",
        cls="killed",
        fix="check-orchestrator-kill",
        log=""" [2024-06-26 15:45:57,666] {local_executor.py:130} ERROR - Failed to execute task PID of job runner does not match.
 [2024-06-26 15:46:00,999] {dagrun.py:586} ERROR - Marking run <DagRun pharma_consol_prodtype_forecast_data @ 2024-06-25 02:00:00+00:00: scheduled__2024-06-25T02:00:00+00:00, state:running> failed
Some of my dags are receving SIGTERM Signal abruptly""",
    ),
    dict(
        source="https://github.com/drandreaskrueger/chainhammer/issues/7",
        cls="bad_input",
        fix="fix-input-file",
        log="""raise JSONDecodeError("Expecting value", s, err.value) from None
json.decoder.JSONDecodeError: Expecting value: line 1 column 1 (char 0)""",
    ),
    dict(
        source="https://github.com/bugsuse/pytropomi/issues/2",
        cls="bad_input",
        fix="fix-input-file",
        log="""  File "/home/dr/pytropomi/pytropomi/s5p.py", line 306, in _parse_search
    self.json = self.search_results.json()
  File "/home/dr/miniconda3/envs/p373/lib/python3.7/site-packages/requests/models.py", line 898, in json
    return complexjson.loads(self.text, **kwargs)
  File "/home/dr/miniconda3/envs/p373/lib/python3.7/json/decoder.py", line 355, in raw_decode
    raise JSONDecodeError("Expecting value", s, err.value) from None
json.decoder.JSONDecodeError: Expecting value: line 1 column 1 (char 0)""",
    ),
    dict(
        source="https://github.com/innnky/so-vits-svc/issues/48",
        cls="bad_input",
        fix="fix-config",
        log="""json.decoder.JSONDecodeError: Expecting value: line 1 column 1 (char 0)
(config.json had become a file holding one line of text)""",
    ),
    dict(
        source="https://github.com/facebookresearch/TransCoder/issues/38",
        cls="bad_input",
        fix="fix-input-file",
        log="""cpp: tokenizing 189 json files ...
s= repo_name,ref,path,copies,content
concurrent.futures.process._RemoteTraceback:
Traceback (most recent call last):
  File "/usr/local/python-3.7.5/lib/python3.7/concurrent/futures/process.py", line 239, in _process_worker
    r = call_item.fn(*call_item.args, **call_item.kwargs)
  File "/ghome/yuy/transcoder/TransCoder/preprocessing/src/dataset.py", line 71, in process
    self.process_json_and_tok(keep_comments, tok_executor)
json.decoder.JSONDecodeError: Expecting value: line 1 column 1 (char 0)""",
    ),
    dict(
        source="https://github.com/OpenRLHF/OpenRLHF/issues/939",
        cls="bad_input",
        fix="fix-input-file",
        log="""raise JSONDecodeError("Expecting value", s, err.value) from None
json.decoder.JSONDecodeError: Expecting value: line 1 column 1 (char 0)""",
    ),
    dict(
        source="https://github.com/hildogjr/KiCost/issues/189",
        cls="bad_input",
        fix="set-encoding",
        log="""    Traceback (most recent call last):
     File "<stdin>", line 1, in <module>
      File "/usr/lib/python3.5/codecs.py", line 321, in decode
        (result, consumed) = self._buffer_decode(data, self.errors, final)
    UnicodeDecodeError: 'utf-8' codec can't decode byte 0xe3 in position 1999: invalid continuation byte""",
    ),
    dict(
        source="https://github.com/turicas/rows/issues/247",
        cls="bad_input",
        fix="set-encoding",
        log=""">>> cities = rows.import_from_csv('test.csv')
Traceback (most recent call last):
  File "<stdin>", line 1, in <module>
  File "/Users/rajdeepsharma/.virtualenvs/charenc/lib/python2.7/site-packages/rows/plugins/plugin_csv.py", line 71, in import_from_csv
    return create_table(reader, meta=meta, *args, **kwargs)
  File "/Users/rajdeepsharma/.virtualenvs/charenc/lib/python2.7/site-packages/unicodecsv/py2.py", line 128, in next
    for value in row]
UnicodeDecodeError: 'utf8' codec can't decode byte 0xcc in position 0: invalid continuation byte""",
    ),
    dict(
        source="https://github.com/codeforbirmingham/Open-Disclosure/issues/7",
        cls="bad_input",
        fix="set-encoding",
        log="""UnicodeDecodeError: 'utf-8' codec can't decode byte 0x96 in position 5483: invalid start byte""",
    ),
    dict(
        source="https://github.com/PushpenderIndia/crypter/issues/4",
        cls="bad_input",
        fix="set-encoding",
        log="""Traceback (most recent call last):
  File "C:\\Users\\Krickets Laptop\\.spyder-py3\\untitled0.py", line 11, in <module>
    shark=pd.read_csv(r'C:\\DATA QUALITY\\SharkAttackMod4.csv')
  File "C:\\Users\\Krickets Laptop\\anaconda3\\lib\\site-packages\\pandas\\io\\parsers.py", line 676, in parser_f
    return _read(filepath_or_buffer, kwds)
  File "pandas\\_libs\\parsers.pyx", line 1136, in pandas._libs.parsers.TextReader._convert_tokens
UnicodeDecodeError: 'utf-8' codec can't decode byte 0x90 in position 2: invalid start byte""",
    ),
    dict(
        source="https://github.com/nccgroup/ScoutSuite/issues/1696",
        cls="bad_input",
        fix="set-encoding",
        log="""UnicodeDecodeError                        Traceback (most recent call last)
<ipython-input-27-69b8402d058e> in <cell line: 0>()
----> 1 df = pd.read_csv('/content/cleaned_test_booking_data.csv')
parsers.pyx in pandas._libs.parsers.raise_parser_error()

UnicodeDecodeError: 'utf-8' codec can't decode byte 0x8b in position 1: invalid start byte""",
    ),
    dict(
        source="https://github.com/nixfu/reddit-shreddit/pull/1",
        cls="bad_input",
        fix="set-encoding",
        log="""Traceback (most recent call last):
  File "reddit_shreddit.py", line 258, in <module>
    run_bot()
  File "reddit_shreddit.py", line 159, in run_bot
    for del_row in del_reader:
  File "C:\\Users\\nabakin\\anaconda3\\envs\\py37\\lib\\encodings\\cp1252.py", line 23, in decode
    return codecs.charmap_decode(input,self.errors,decoding_table)[0]
UnicodeDecodeError: 'charmap' codec can't decode byte 0x9d in position 2816: character maps to <undefined>""",
    ),
]
