"""Failure logs from public issue trackers (part D), as labelled for bench/rca."""

ENTRIES = [
    dict(
        source="https://github.com/jensolson/SPX-Gamma-Exposure/issues/2",
        cls="schema_mismatch",
        fix="update-query-or-mapping",
        log='''  File "pandas\\core\\frame.py", line 4555, in set_index
    raise KeyError(f"None of {missing} are in the columns")
KeyError: "None of ['Trade Date'] are in the columns"''',
    ),
    dict(
        source="https://github.com/leosmigel/analyzingalpha/issues/3",
        cls="schema_mismatch",
        fix="update-query-or-mapping",
        log='''KeyError                                  Traceback (most recent call last)
<ipython-input-40-6acb74aaf00d> in <module>()
----> 8 sp500 = data[0].loc[1:,[0,1,6,7]]
/usr/local/lib/python3.6/dist-packages/pandas/core/indexing.py in _validate_read_indexer(self, key, indexer, axis, raise_missing)
-> 1640                 raise KeyError(f"None of [{key}] are in the [{axis_name}]")
KeyError: "None of [Int64Index([0, 1, 6, 7], dtype='int64')] are in the [columns]"''',
    ),
    dict(
        source="https://github.com/deepchem/deepchem/issues/1519",
        cls="schema_mismatch",
        fix="update-query-or-mapping",
        log=""">>> df = pd.read_csv('Zr.csv')
>>> sample_elems = df[field].tolist()
Traceback (most recent call last):
  File "/home/zeng/anaconda3/lib/python3.6/site-packages/pandas/core/indexes/base.py", line 2525, in get_loc
    return self._engine.get_loc(key)
  File "pandas/_libs/index.pyx", line 117, in pandas._libs.index.IndexEngine.get_loc
  File "pandas/_libs/hashtable_class_helper.pxi", line 1273, in pandas._libs.hashtable.PyObjectHashTable.get_item
KeyError: 'smiles'

During handling of the above exception, another exception occurred:

Traceback (most recent call last):
  File "<stdin>", line 1, in <module>
  File "/home/zeng/anaconda3/lib/python3.6/site-packages/pandas/core/frame.py", line 2139, in __getitem__
    return self._getitem_column(key)""",
    ),
    dict(
        source="https://github.com/RoversX/umami-csv-import-script/issues/2",
        cls="schema_mismatch",
        fix="update-query-or-mapping",
        log="""KeyError: "['subdivision1', 'subdivision2'] not in index"
Traceback:

File "/home/user/app/app.py", line 50, in <module>
    df_session = df[session_columns]
File "/usr/local/lib/python3.10/site-packages/pandas/core/frame.py", line 4108, in __getitem__
    indexer = self.columns._get_indexer_strict(key, "columns")[1]
File "/usr/local/lib/python3.10/site-packages/pandas/core/indexes/base.py", line 6252, in _raise_if_missing
    raise KeyError(f"{not_found} not in index")""",
    ),
    dict(
        source="https://github.com/mostafaalishahi/eICU_Benchmark/issues/5",
        cls="schema_mismatch",
        fix="update-query-or-mapping",
        log='''Traceback (most recent call last):
  File "data_extraction_root.py", line 51, in <module>
    main()
  File "/home/danfeng/LLM-HC/eICU/eICU_Benchmark/data_extraction/utils.py", line 119, in filter_patients_on_columns
    return patients[columns]
  File "/home/danfeng/LLM-HC/eICU/.venv3.5/lib/python3.5/site-packages/pandas/core/indexing.py", line 1252, in _validate_read_indexer
    raise KeyError("{} not in index".format(not_found))
KeyError: "['hospitaladmityear'] not in index"''',
    ),
    dict(
        source="https://github.com/Pengeace/LncRNA-Disease-link/issues/1",
        cls="schema_mismatch",
        fix="update-query-or-mapping",
        log="""    ld['Name']
KeyError: 'Name\'""",
    ),
    dict(
        source="https://github.com/chrisalbon/mlai/issues/98",
        cls="schema_mismatch",
        fix="update-query-or-mapping",
        log="""df = pd.read_csv('../example.csv', index_col='UID', names=['UID', 'First Name', 'Last Name', 'Age', 'Pre-Test Score', 'Post-Test Score'])
KeyError: 'UID\'""",
    ),
    dict(
        source="https://github.com/conbench/conbench/issues/1009",
        cls="timeout",
        fix="optimise-slow-step",
        log=""""[2023-04-02 10:55:30,493] ERROR in app: Exception on /api/benchmarks/ [GET]"
Traceback (most recent call last):
"File ""/usr/local/lib/python3.11/site-packages/sqlalchemy/engine/base.py"", line 1964, in _exec_single_context"
self.dialect.do_execute(
"cursor.execute(statement, parameters)"
psycopg2.errors.QueryCanceled: canceling statement due to statement timeout
The above exception was the direct cause of the following exception:
Traceback (most recent call last):
"File ""/usr/local/lib/python3.11/site-packages/flask/app.py"", line 2528, in wsgi_app"
response = self.full_dispatch_request()""",
    ),
    dict(
        source="https://github.com/ClickHouse/pg_clickhouse/pull/297",
        cls="timeout",
        fix="raise-timeout",
        log="""It was failing with `canceling statement due to statement timeout` rather than the expected `pg_clickhouse: query was canceled`.""",
    ),
    dict(
        source="https://github.com/cweijan/vscode-database-client/issues/413",
        cls="timeout",
        fix="raise-timeout",
        log="""select count(*) from abc where length(aa::text) > 30000
ERROR: canceling statement due to statement timeout""",
    ),
    dict(
        source="https://github.com/kajweb/wqxuetang_downloader/issues/36",
        cls="server_error",
        fix="retry-with-backoff",
        log="""  File "D:\\Users\\xiao\\Desktop\\1\\wqxtDownloader.py", line 215, in downloadImage
    request = curl.request.urlopen(requestPer, timeout=10);
  File "D:\\MySoftWare\\Programming\\Python\\lib\\urllib\\request.py", line 649, in http_error_default
    raise HTTPError(req.full_url, code, msg, hdrs, fp)
urllib.error.HTTPError: HTTP Error 503: Service Temporarily Unavailable""",
    ),
    dict(
        source="https://github.com/HR/github-clone/issues/7",
        cls="server_error",
        fix="check-upstream-status",
        log="""File "E:\\python\\lib\\site-packages\\requests\\models.py", line 943, in raise_for_status
    raise HTTPError(http_error_msg, response=self)
requests.exceptions.HTTPError: 503 Server Error: Server Temporarily Unavailable for url: http://grcm39.rest.ensembl.org/variation/Mus_musculus?pops=1""",
    ),
    dict(
        source="https://github.com/flatironinstitute/spikeforest_old/issues/59",
        cls="server_error",
        fix="retry-with-backoff",
        log="""Traceback (most recent call last):
  File "/groups/apig/home/colonellj/sfenv/sf_env/lib/python3.7/site-packages/mountainclient/mountainremoteclient.py", line 131, in _http_get_json
    req = request.urlopen(url)
  File "/misc/local/python-3.7.0/lib/python3.7/urllib/request.py", line 649, in http_error_default
    raise HTTPError(req.full_url, code, msg, hdrs, fp)
urllib.error.HTTPError: HTTP Error 503: Service Unavailable""",
    ),
    dict(
        source="https://github.com/patflick/tsppi/issues/1",
        cls="server_error",
        fix="retry-with-backoff",
        log="""Traceback (most recent call last):
  File "download_psicquic.py", line 84, in <module>
    download_all_ppis(PPI_FOLDER, "PSICQUIC")
  File "download_psicquic.py", line 52, in download_all_ppis
    with urllib.request.urlopen(count_url) as cf:
  File "/Library/Frameworks/Python.framework/Versions/3.4/lib/python3.4/urllib/request.py", line 588, in http_error_default
    raise HTTPError(req.full_url, code, msg, hdrs, fp)
urllib.error.HTTPError: HTTP Error 503: Service Unavailable""",
    ),
    dict(
        source="https://github.com/devanshbatham/ParamSpider/issues/58",
        cls="server_error",
        fix="retry-with-backoff",
        log="""503 Server Error: Service Temporarily Unavailable for url:""",
    ),
    dict(
        source="https://github.com/city96/ComfyUI_NetDist/issues/36",
        cls="server_error",
        fix="check-upstream-status",
        log="""requests.exceptions.HTTPError: 503 Server Error: Service Unavailable for url: http://127.0.0.1:8288/queue""",
    ),
]
