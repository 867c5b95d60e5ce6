/* wobert._wordcut: jieba's cut with the HMM off, and the word tokenizer's ids, in C.
 *
 * WordCutter(words, total) cuts text as jieba 0.42's Tokenizer.cut(text, HMM=False) does
 * with a dictionary of (word, frequency) pairs whose line frequencies sum to total:
 *
 * - A run of jieba's word characters (U+4E00-U+9FD5, ASCII letters and digits, + # & . _
 *   % -) is cut on its word graph: from each position, the dictionary words starting
 *   there (the single character where none does); the path with the highest sum of
 *   log(frequency) - log(total) wins, ties going to the longer word; consecutive
 *   single-character ASCII letters and digits on the path are joined into one piece.
 * - Any other character is a piece of its own; "\r\n" is one piece.
 *
 * with_vocab(vocab, unk_id, max_word_chars, fallback) returns a WordCutter that also knows
 * the vocabulary; its id_chars(text) gives bert4keras's word-level ids of the pieces as a
 * str of id characters (id i is chr(i), from U+D800 on chr(i + 0x800); see
 * wobert.tokenizer._id_char). A piece in the vocabulary is its own id. Any other piece of
 * word characters goes through BERT's char level here: each CJK character and each of
 * + # & . _ % - is one token, each run of ASCII letters and digits is a word for WordPiece
 * (greedy longest match, "##" pieces after the first; [UNK] for a word with no pieces or
 * longer than max_word_chars); a token outside the vocabulary is [UNK]. Any other piece
 * (one character outside the word characters, or "\r\n") is fallback[piece].
 *
 * The dictionary and the vocabulary share one trie: nodes hold a word's score and a
 * token's id; edges (parent, character) live in one open-addressing hash table, except
 * the root's BMP edges, which are a flat array.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#define NO_EDGE UINT64_MAX
#define BMP 0x10000
#define SURROGATES 0xD800
#define SURROGATE_COUNT 0x800
#define MAX_ID (0x10FFFF - SURROGATE_COUNT)

typedef struct {
    double score;    /* log(frequency) - log(total), for a word */
    int32_t token;   /* the vocabulary id of the string ending here, or -1 */
    int32_t is_word; /* a dictionary word with a frequency above 0 */
} Node;

typedef struct {
    Node *nodes;
    Py_ssize_t n_nodes, nodes_cap;
    uint64_t *keys;    /* edge key: parent << 21 | character; NO_EDGE where free */
    int32_t *children; /* the child node of each edge */
    size_t n_edges, edges_cap; /* edges_cap: a power of two */
    int shift;                 /* 64 - log2(edges_cap) */
    int32_t *root_bmp;         /* the root's child for each BMP character, or -1 */
} Trie;

typedef struct {
    PyObject_HEAD
    Trie trie;
    double unknown_score; /* log(1) - log(total): a character that is not a word */
    int32_t unk;          /* the [UNK] id; -1 without a vocabulary */
    int32_t continuation; /* the node of "##", or -1 */
    Py_ssize_t max_word_chars;
    PyObject *fallback;   /* piece -> id characters, for other pieces outside the vocabulary */
} WordCutter;

static PyTypeObject WordCutterType;

/* ---------------------------------------------------------------------------------- */
/* Characters                                                                          */
/* ---------------------------------------------------------------------------------- */

static inline int is_ascii_alnum(Py_UCS4 c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* jieba's re_han_default: the characters it joins into words. */
static inline int is_word_char(Py_UCS4 c) {
    return (c >= 0x4E00 && c <= 0x9FD5) || is_ascii_alnum(c) || c == '+' || c == '#' ||
           c == '&' || c == '.' || c == '_' || c == '%' || c == '-';
}

static inline Py_UCS4 id_char(int32_t id) {
    return (Py_UCS4)(id >= SURROGATES ? id + SURROGATE_COUNT : id);
}

/* ---------------------------------------------------------------------------------- */
/* Trie                                                                                */
/* ---------------------------------------------------------------------------------- */

static inline size_t edge_slot(const Trie *t, uint64_t key) {
    return (size_t)((key * 0x9E3779B97F4A7C15ull) >> t->shift);
}

static inline int32_t trie_child(const Trie *t, int32_t node, Py_UCS4 c) {
    if (node == 0 && c < BMP)
        return t->root_bmp[c];
    uint64_t key = (uint64_t)node << 21 | c;
    size_t mask = t->edges_cap - 1;
    for (size_t i = edge_slot(t, key);; i = (i + 1) & mask) {
        if (t->keys[i] == key)
            return t->children[i];
        if (t->keys[i] == NO_EDGE)
            return -1;
    }
}

static void trie_free(Trie *t) {
    PyMem_Free(t->nodes);
    PyMem_Free(t->keys);
    PyMem_Free(t->children);
    PyMem_Free(t->root_bmp);
    memset(t, 0, sizeof(*t));
}

static int trie_alloc_edges(Trie *t, size_t cap) {
    t->keys = PyMem_Malloc(cap * sizeof(uint64_t));
    t->children = PyMem_Malloc(cap * sizeof(int32_t));
    if (!t->keys || !t->children)
        return -1;
    memset(t->keys, 0xFF, cap * sizeof(uint64_t)); /* NO_EDGE */
    t->edges_cap = cap;
    t->shift = 64;
    for (size_t c = cap; c > 1; c >>= 1)
        t->shift--;
    return 0;
}

static int trie_init(Trie *t) {
    memset(t, 0, sizeof(*t));
    t->nodes_cap = 1024;
    t->nodes = PyMem_Malloc(t->nodes_cap * sizeof(Node));
    t->root_bmp = PyMem_Malloc(BMP * sizeof(int32_t));
    if (!t->nodes || !t->root_bmp || trie_alloc_edges(t, 1024) < 0) {
        trie_free(t);
        PyErr_NoMemory();
        return -1;
    }
    memset(t->root_bmp, 0xFF, BMP * sizeof(int32_t)); /* -1 */
    t->nodes[0] = (Node){0.0, -1, 0};
    t->n_nodes = 1;
    return 0;
}

static int trie_copy(Trie *dst, const Trie *src) {
    memset(dst, 0, sizeof(*dst));
    dst->nodes = PyMem_Malloc(src->nodes_cap * sizeof(Node));
    dst->root_bmp = PyMem_Malloc(BMP * sizeof(int32_t));
    if (!dst->nodes || !dst->root_bmp || trie_alloc_edges(dst, src->edges_cap) < 0) {
        trie_free(dst);
        PyErr_NoMemory();
        return -1;
    }
    memcpy(dst->nodes, src->nodes, src->n_nodes * sizeof(Node));
    memcpy(dst->root_bmp, src->root_bmp, BMP * sizeof(int32_t));
    memcpy(dst->keys, src->keys, src->edges_cap * sizeof(uint64_t));
    memcpy(dst->children, src->children, src->edges_cap * sizeof(int32_t));
    dst->n_nodes = src->n_nodes;
    dst->nodes_cap = src->nodes_cap;
    dst->n_edges = src->n_edges;
    return 0;
}

static void trie_put_edge(Trie *t, uint64_t key, int32_t child) {
    size_t mask = t->edges_cap - 1, i = edge_slot(t, key);
    while (t->keys[i] != NO_EDGE)
        i = (i + 1) & mask;
    t->keys[i] = key;
    t->children[i] = child;
    t->n_edges++;
}

/* Double the edge table (kept at most half full). */
static int trie_grow_edges(Trie *t) {
    uint64_t *keys = t->keys;
    int32_t *children = t->children;
    size_t cap = t->edges_cap;
    if (trie_alloc_edges(t, cap * 2) < 0) {
        PyMem_Free(t->keys);
        PyMem_Free(t->children);
        t->keys = keys;
        t->children = children;
        t->edges_cap = cap;
        PyErr_NoMemory();
        return -1;
    }
    t->n_edges = 0;
    for (size_t i = 0; i < cap; i++)
        if (keys[i] != NO_EDGE)
            trie_put_edge(t, keys[i], children[i]);
    PyMem_Free(keys);
    PyMem_Free(children);
    return 0;
}

/* The child of node for character c, created if missing; -1 on error. */
static int32_t trie_add_child(Trie *t, int32_t node, Py_UCS4 c) {
    int32_t child = trie_child(t, node, c);
    if (child >= 0)
        return child;
    if (t->n_nodes >= INT32_MAX) {
        PyErr_SetString(PyExc_OverflowError, "too many dictionary prefixes");
        return -1;
    }
    if (t->n_nodes == t->nodes_cap) {
        Node *nodes = PyMem_Realloc(t->nodes, 2 * t->nodes_cap * sizeof(Node));
        if (!nodes) {
            PyErr_NoMemory();
            return -1;
        }
        t->nodes = nodes;
        t->nodes_cap *= 2;
    }
    child = (int32_t)t->n_nodes++;
    t->nodes[child] = (Node){0.0, -1, 0};
    if (node == 0 && c < BMP) {
        t->root_bmp[c] = child;
        return child;
    }
    if (2 * (t->n_edges + 1) > t->edges_cap && trie_grow_edges(t) < 0)
        return -1;
    trie_put_edge(t, (uint64_t)node << 21 | c, child);
    return child;
}

/* The node of a str, created with its prefixes; -1 on error. */
static int32_t trie_insert(Trie *t, PyObject *word) {
    int kind = PyUnicode_KIND(word);
    const void *data = PyUnicode_DATA(word);
    int32_t node = 0;
    for (Py_ssize_t i = 0, n = PyUnicode_GET_LENGTH(word); i < n && node >= 0; i++)
        node = trie_add_child(t, node, PyUnicode_READ(kind, data, i));
    return node;
}

/* The node of s[0:n], or -1 where the trie does not hold it. */
static inline int32_t trie_find(const Trie *t, const Py_UCS4 *s, Py_ssize_t n) {
    int32_t node = 0;
    for (Py_ssize_t i = 0; i < n && node >= 0; i++)
        node = trie_child(t, node, s[i]);
    return node;
}

/* ---------------------------------------------------------------------------------- */
/* The cut                                                                             */
/* ---------------------------------------------------------------------------------- */

/* The best path through the word graph of the run s[start:end]: the piece starting at k
 * ends before next[k] + 1; score[k] is the path's score from k (jieba's calc). */
static void best_path(const WordCutter *self, const Py_UCS4 *s, Py_ssize_t start,
                      Py_ssize_t end, double *score, Py_ssize_t *next) {
    const Trie *t = &self->trie;
    score[end] = 0.0;
    for (Py_ssize_t k = end - 1; k >= start; k--) {
        double best = 0.0;
        Py_ssize_t to = k;
        int found = 0;
        int32_t node = 0;
        for (Py_ssize_t j = k; j < end; j++) {
            node = trie_child(t, node, s[j]);
            if (node < 0)
                break;
            if (t->nodes[node].is_word) {
                double value = t->nodes[node].score + score[j + 1];
                if (!found || value >= best) {
                    best = value;
                    to = j;
                    found = 1;
                }
            }
        }
        score[k] = found ? best : self->unknown_score + score[k + 1];
        next[k] = to;
    }
}

/* The pieces of the run s[start:end] along next, appended to ends; the new count. */
static Py_ssize_t run_pieces(const Py_UCS4 *s, Py_ssize_t start, Py_ssize_t end,
                             const Py_ssize_t *next, Py_ssize_t *ends, Py_ssize_t m) {
    Py_ssize_t letters = -1; /* start of pending single ASCII letters and digits */
    for (Py_ssize_t x = start, y; x < end; x = y) {
        y = next[x] + 1;
        if (y == x + 1 && is_ascii_alnum(s[x])) {
            if (letters < 0)
                letters = x;
            continue;
        }
        if (letters >= 0) {
            ends[m++] = x;
            letters = -1;
        }
        ends[m++] = y;
    }
    if (letters >= 0)
        ends[m++] = end;
    return m;
}

/* Where each piece of s[0:n] ends: ends[0] < ends[1] < ... = n; the number of pieces. */
static Py_ssize_t cut_ends(const WordCutter *self, const Py_UCS4 *s, Py_ssize_t n,
                           Py_ssize_t *ends, double *score, Py_ssize_t *next) {
    Py_ssize_t m = 0, i = 0;
    while (i < n) {
        if (!is_word_char(s[i])) {
            i += (s[i] == '\r' && i + 1 < n && s[i + 1] == '\n') ? 2 : 1;
            ends[m++] = i;
            continue;
        }
        Py_ssize_t end = i;
        while (end < n && is_word_char(s[end]))
            end++;
        best_path(self, s, i, end, score, next);
        m = run_pieces(s, i, end, next, ends, m);
        i = end;
    }
    return m;
}

/* A text's characters and the cut's work space, freed together. */
typedef struct {
    Py_UCS4 *s;
    Py_ssize_t n, m, *ends, *next;
    double *score;
} Cut;

static void cut_free(Cut *cut) {
    PyMem_Free(cut->s);
    PyMem_Free(cut->ends);
    PyMem_Free(cut->next);
    PyMem_Free(cut->score);
}

/* Cut text into cut->ends; -1 with an exception set (TypeError, UnicodeEncodeError for a
 * lone surrogate, as when text is encoded to UTF-8). */
static int cut_text(const WordCutter *self, PyObject *text, Cut *cut) {
    memset(cut, 0, sizeof(*cut));
    if (!PyUnicode_Check(text)) {
        PyErr_Format(PyExc_TypeError, "text must be str, not %.100s", Py_TYPE(text)->tp_name);
        return -1;
    }
    cut->n = PyUnicode_GET_LENGTH(text);
    cut->s = PyUnicode_AsUCS4Copy(text);
    if (!cut->s)
        return -1;
    for (Py_ssize_t i = 0; PyUnicode_KIND(text) != PyUnicode_1BYTE_KIND && i < cut->n; i++) {
        if (cut->s[i] >= SURROGATES && cut->s[i] < SURROGATES + SURROGATE_COUNT) {
            PyObject *err = PyObject_CallFunction(PyExc_UnicodeEncodeError, "sOnns", "utf-8",
                                                  text, i, i + 1, "surrogates not allowed");
            if (err) {
                PyErr_SetObject(PyExc_UnicodeEncodeError, err);
                Py_DECREF(err);
            }
            return -1;
        }
    }
    size_t size = (size_t)cut->n + 1;
    cut->ends = PyMem_Malloc(size * sizeof(Py_ssize_t));
    cut->next = PyMem_Malloc(size * sizeof(Py_ssize_t));
    cut->score = PyMem_Malloc(size * sizeof(double));
    if (!cut->ends || !cut->next || !cut->score) {
        PyErr_NoMemory();
        return -1;
    }
    cut->m = cut_ends(self, cut->s, cut->n, cut->ends, cut->score, cut->next);
    return 0;
}

/* ---------------------------------------------------------------------------------- */
/* Ids                                                                                 */
/* ---------------------------------------------------------------------------------- */

typedef struct {
    Py_UCS4 *chars;
    Py_ssize_t n, cap;
} Ids;

static int ids_reserve(Ids *ids, Py_ssize_t more) {
    if (ids->n + more <= ids->cap)
        return 0;
    Py_ssize_t cap = 2 * ids->cap > ids->n + more ? 2 * ids->cap : ids->n + more;
    Py_UCS4 *chars = PyMem_Realloc(ids->chars, (size_t)cap * sizeof(Py_UCS4));
    if (!chars) {
        PyErr_NoMemory();
        return -1;
    }
    ids->chars = chars;
    ids->cap = cap;
    return 0;
}

/* Append fallback[text[a:b]] (a str of id characters). */
static int add_fallback(const WordCutter *self, PyObject *text, Py_ssize_t a, Py_ssize_t b,
                        Ids *ids) {
    PyObject *piece = PyUnicode_Substring(text, a, b);
    if (!piece)
        return -1;
    PyObject *value = PyObject_GetItem(self->fallback, piece);
    Py_DECREF(piece);
    if (!value)
        return -1;
    int status = -1;
    if (!PyUnicode_Check(value)) {
        PyErr_Format(PyExc_TypeError, "fallback ids must be str, not %.100s",
                     Py_TYPE(value)->tp_name);
    } else if (ids_reserve(ids, PyUnicode_GET_LENGTH(value)) == 0) {
        int kind = PyUnicode_KIND(value);
        const void *data = PyUnicode_DATA(value);
        for (Py_ssize_t i = 0, n = PyUnicode_GET_LENGTH(value); i < n; i++)
            ids->chars[ids->n++] = PyUnicode_READ(kind, data, i);
        status = 0;
    }
    Py_DECREF(value);
    return status;
}

static int add_id(Ids *ids, int32_t id) {
    if (ids_reserve(ids, 1) < 0)
        return -1;
    ids->chars[ids->n++] = id_char(id);
    return 0;
}

/* The vocabulary id of the string of node, or [UNK]. */
static inline int32_t token_or_unk(const WordCutter *self, int32_t node) {
    int32_t token = node >= 0 ? self->trie.nodes[node].token : -1;
    return token >= 0 ? token : self->unk;
}

/* Append WordPiece's ids of the word s[a:b] (as bert4keras's _word_piece_tokenize). */
static int add_word_pieces(const WordCutter *self, const Py_UCS4 *s, Py_ssize_t a,
                           Py_ssize_t b, Ids *ids) {
    const Trie *t = &self->trie;
    if (b - a > self->max_word_chars)
        return add_id(ids, token_or_unk(self, trie_find(t, s + a, b - a)));
    Py_ssize_t mark = ids->n;
    for (Py_ssize_t start = a; start < b;) {
        int32_t node = start == a ? 0 : self->continuation, token = -1;
        Py_ssize_t end = start;
        for (Py_ssize_t k = start; k < b && node >= 0; k++) {
            node = trie_child(t, node, s[k]);
            if (node >= 0 && t->nodes[node].token >= 0) {
                token = t->nodes[node].token;
                end = k + 1;
            }
        }
        if (token < 0) { /* no piece here: the whole word is [UNK] */
            ids->n = mark;
            return add_id(ids, self->unk);
        }
        if (add_id(ids, token) < 0)
            return -1;
        start = end;
    }
    return 0;
}

/* Append the char level's ids of the word characters s[a:b]. */
static int add_chars(const WordCutter *self, const Py_UCS4 *s, Py_ssize_t a, Py_ssize_t b,
                     Ids *ids) {
    for (Py_ssize_t i = a, j; i < b; i = j) {
        if (!is_ascii_alnum(s[i])) { /* CJK or punctuation: a token of its own */
            if (add_id(ids, token_or_unk(self, trie_child(&self->trie, 0, s[i]))) < 0)
                return -1;
            j = i + 1;
            continue;
        }
        for (j = i; j < b && is_ascii_alnum(s[j]); j++)
            ;
        if (add_word_pieces(self, s, i, j, ids) < 0)
            return -1;
    }
    return 0;
}

/* Append the ids of the piece s[a:b] of text. */
static int add_piece(const WordCutter *self, PyObject *text, const Py_UCS4 *s, Py_ssize_t a,
                     Py_ssize_t b, Ids *ids) {
    int32_t node = trie_find(&self->trie, s + a, b - a);
    if (node >= 0 && self->trie.nodes[node].token >= 0)
        return add_id(ids, self->trie.nodes[node].token);
    if (is_word_char(s[a]))
        return add_chars(self, s, a, b, ids);
    return add_fallback(self, text, a, b, ids);
}

/* ---------------------------------------------------------------------------------- */
/* WordCutter                                                                          */
/* ---------------------------------------------------------------------------------- */

/* Unpack a (str, int) pair; 0 with TypeError for anything else. */
static int parse_pair(PyObject *item, const char *format, PyObject **text, void *number) {
    if (PyTuple_Check(item))
        return PyArg_ParseTuple(item, format, text, number);
    PyErr_Format(PyExc_TypeError, "expected (str, int) pairs, not %.100s",
                 Py_TYPE(item)->tp_name);
    return 0;
}

static int add_words(WordCutter *self, PyObject *words, long long total) {
    double log_total = log((double)total);
    PyObject *iter = PyObject_GetIter(words), *item;
    if (!iter)
        return -1;
    while ((item = PyIter_Next(iter))) {
        PyObject *word;
        long long freq;
        int ok = parse_pair(item, "UL;words must be (str, int) pairs", &word, &freq);
        int32_t node = ok ? trie_insert(&self->trie, word) : -1;
        Py_DECREF(item);
        if (node < 0) {
            Py_DECREF(iter);
            return -1;
        }
        Node *entry = &self->trie.nodes[node];
        entry->is_word = freq > 0;
        entry->score = freq > 0 ? log((double)freq) - log_total : 0.0;
    }
    Py_DECREF(iter);
    return PyErr_Occurred() ? -1 : 0;
}

static PyObject *WordCutter_new(PyTypeObject *type, PyObject *args, PyObject *kwargs) {
    static char *keywords[] = {"words", "total", NULL};
    PyObject *words;
    long long total;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OL:WordCutter", keywords, &words, &total))
        return NULL;
    if (total < 1) {
        PyErr_SetString(PyExc_ValueError, "total must be a positive integer");
        return NULL;
    }
    WordCutter *self = (WordCutter *)type->tp_alloc(type, 0);
    if (!self)
        return NULL;
    self->unk = self->continuation = -1;
    self->unknown_score = log(1.0) - log((double)total);
    if (trie_init(&self->trie) < 0 || add_words(self, words, total) < 0) {
        Py_DECREF(self);
        return NULL;
    }
    return (PyObject *)self;
}

static int add_tokens(WordCutter *self, PyObject *vocab) {
    PyObject *iter = PyObject_GetIter(vocab), *item;
    if (!iter)
        return -1;
    while ((item = PyIter_Next(iter))) {
        PyObject *token;
        int id;
        int ok = parse_pair(item, "Ui;vocab must be (str, int) pairs", &token, &id);
        if (ok && (id < 0 || id > MAX_ID)) {
            PyErr_Format(PyExc_ValueError, "token id %d is out of range", id);
            ok = 0;
        }
        int32_t node = ok ? trie_insert(&self->trie, token) : -1;
        Py_DECREF(item);
        if (node < 0) {
            Py_DECREF(iter);
            return -1;
        }
        self->trie.nodes[node].token = id;
    }
    Py_DECREF(iter);
    return PyErr_Occurred() ? -1 : 0;
}

static PyObject *WordCutter_with_vocab(WordCutter *self, PyObject *args, PyObject *kwargs) {
    static char *keywords[] = {"vocab", "unk_id", "max_word_chars", "fallback", NULL};
    PyObject *vocab, *fallback;
    int unk;
    Py_ssize_t max_word_chars;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OinO:with_vocab", keywords, &vocab, &unk,
                                     &max_word_chars, &fallback))
        return NULL;
    if (unk < 0 || unk > MAX_ID) {
        PyErr_Format(PyExc_ValueError, "unk_id %d is out of range", unk);
        return NULL;
    }
    WordCutter *copy = PyObject_GC_New(WordCutter, &WordCutterType);
    if (!copy)
        return NULL;
    copy->fallback = NULL;
    if (trie_copy(&copy->trie, &self->trie) < 0) {
        PyObject_GC_Del(copy);
        return NULL;
    }
    copy->unknown_score = self->unknown_score;
    copy->unk = unk;
    copy->max_word_chars = max_word_chars;
    Py_INCREF(fallback);
    copy->fallback = fallback;
    PyObject_GC_Track(copy);
    if (add_tokens(copy, vocab) < 0) {
        Py_DECREF(copy);
        return NULL;
    }
    Py_UCS4 hashes[2] = {'#', '#'};
    copy->continuation = trie_find(&copy->trie, hashes, 2);
    return (PyObject *)copy;
}

static PyObject *WordCutter_cut(WordCutter *self, PyObject *text) {
    Cut cut;
    PyObject *pieces = NULL;
    if (cut_text(self, text, &cut) == 0 && (pieces = PyList_New(cut.m))) {
        for (Py_ssize_t k = 0, start = 0; k < cut.m; start = cut.ends[k++]) {
            PyObject *piece = PyUnicode_Substring(text, start, cut.ends[k]);
            if (!piece) {
                Py_CLEAR(pieces);
                break;
            }
            PyList_SET_ITEM(pieces, k, piece);
        }
    }
    cut_free(&cut);
    return pieces;
}

static PyObject *WordCutter_id_chars(WordCutter *self, PyObject *text) {
    if (self->unk < 0) {
        PyErr_SetString(PyExc_ValueError, "id_chars needs a vocabulary: use with_vocab");
        return NULL;
    }
    Cut cut;
    Ids ids = {NULL, 0, 0};
    PyObject *result = NULL;
    if (cut_text(self, text, &cut) == 0 && ids_reserve(&ids, cut.m) == 0) {
        Py_ssize_t k = 0;
        for (Py_ssize_t start = 0; k < cut.m; start = cut.ends[k++])
            if (add_piece(self, text, cut.s, start, cut.ends[k], &ids) < 0)
                break;
        if (k == cut.m)
            result = PyUnicode_FromKindAndData(PyUnicode_4BYTE_KIND, ids.chars, ids.n);
    }
    PyMem_Free(ids.chars);
    cut_free(&cut);
    return result;
}

static int WordCutter_traverse(WordCutter *self, visitproc visit, void *arg) {
    Py_VISIT(self->fallback);
    return 0;
}

static int WordCutter_clear(WordCutter *self) {
    Py_CLEAR(self->fallback);
    return 0;
}

static void WordCutter_dealloc(WordCutter *self) {
    PyObject_GC_UnTrack(self);
    WordCutter_clear(self);
    trie_free(&self->trie);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyMethodDef WordCutter_methods[] = {
    {"cut", (PyCFunction)WordCutter_cut, METH_O,
     "cut(text) -> list[str]: jieba's pieces of text, HMM off."},
    {"with_vocab", (PyCFunction)(void (*)(void))WordCutter_with_vocab,
     METH_VARARGS | METH_KEYWORDS,
     "with_vocab(vocab, unk_id, max_word_chars, fallback) -> WordCutter: a copy that also "
     "holds the vocabulary ((token, id) pairs), for id_chars."},
    {"id_chars", (PyCFunction)WordCutter_id_chars, METH_O,
     "id_chars(text) -> str: the token ids of text's pieces, as id characters."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject WordCutterType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "wobert._wordcut.WordCutter",
    .tp_doc = "WordCutter(words, total): jieba's cut with the HMM off, for (word, frequency) "
              "pairs whose dictionary lines sum to total.",
    .tp_basicsize = sizeof(WordCutter),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_new = WordCutter_new,
    .tp_dealloc = (destructor)WordCutter_dealloc,
    .tp_traverse = (traverseproc)WordCutter_traverse,
    .tp_clear = (inquiry)WordCutter_clear,
    .tp_methods = WordCutter_methods,
};

/* ---------------------------------------------------------------------------------- */
/* Module                                                                              */
/* ---------------------------------------------------------------------------------- */

/* The int objects of ids below ID_OBJECTS, made on first use and kept: a batch's lists then
 * share them instead of each allocating its own. */
#define ID_OBJECTS (1 << 18)
static PyObject **id_objects;

static PyObject *id_object(long id) {
    if (id >= ID_OBJECTS)
        return PyLong_FromLong(id);
    if (!id_objects && !(id_objects = PyMem_Calloc(ID_OBJECTS, sizeof(PyObject *))))
        return PyErr_NoMemory();
    if (!id_objects[id] && !(id_objects[id] = PyLong_FromLong(id)))
        return NULL;
    Py_INCREF(id_objects[id]);
    return id_objects[id];
}

/* (token ids, segment ids) of the n id characters of chars from start on: segment 0 for
 * the first n_first of them, 1 for the rest. */
static PyObject *encoding(PyObject *chars, Py_ssize_t start, Py_ssize_t n, Py_ssize_t n_first) {
    int kind = PyUnicode_KIND(chars);
    const void *data = PyUnicode_DATA(chars);
    PyObject *ids = PyList_New(n), *segments = PyList_New(n);
    PyObject *segment_objects[2] = {PyLong_FromLong(0), PyLong_FromLong(1)};
    PyObject *result = NULL;
    if (!ids || !segments || !segment_objects[0] || !segment_objects[1])
        goto done;
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_UCS4 c = PyUnicode_READ(kind, data, start + i);
        PyObject *id = id_object(c >= SURROGATES ? (long)c - SURROGATE_COUNT : (long)c);
        if (!id)
            goto done;
        PyList_SET_ITEM(ids, i, id);
        PyObject *segment = segment_objects[i >= n_first];
        Py_INCREF(segment);
        PyList_SET_ITEM(segments, i, segment);
    }
    result = PyTuple_Pack(2, ids, segments);
done:
    Py_XDECREF(ids);
    Py_XDECREF(segments);
    Py_XDECREF(segment_objects[0]);
    Py_XDECREF(segment_objects[1]);
    return result;
}

static PyObject *id_lists(PyObject *module, PyObject *args) {
    PyObject *chars;
    Py_ssize_t n_first;
    if (!PyArg_ParseTuple(args, "Un:id_lists", &chars, &n_first))
        return NULL;
    return encoding(chars, 0, PyUnicode_GET_LENGTH(chars), n_first);
}

/* A buffer of C ints (array("i")); 0 with an exception otherwise. */
static int get_ints(PyObject *object, Py_buffer *view) {
    if (PyObject_GetBuffer(object, view, PyBUF_FORMAT | PyBUF_C_CONTIGUOUS) == 0) {
        if (view->itemsize == sizeof(int) && view->format && strcmp(view->format, "i") == 0)
            return 1;
        PyBuffer_Release(view);
    }
    PyErr_Clear();
    PyErr_SetString(PyExc_TypeError, "lengths and firsts must be array('i')");
    return 0;
}

static PyObject *split_id_lists(PyObject *module, PyObject *args) {
    PyObject *chars, *lengths_object, *firsts_object, *results = NULL;
    Py_buffer lengths, firsts;
    if (!PyArg_ParseTuple(args, "UOO:split_id_lists", &chars, &lengths_object, &firsts_object))
        return NULL;
    if (!get_ints(lengths_object, &lengths))
        return NULL;
    if (!get_ints(firsts_object, &firsts)) {
        PyBuffer_Release(&lengths);
        return NULL;
    }
    const int *length = lengths.buf, *first = firsts.buf;
    Py_ssize_t n = lengths.len / (Py_ssize_t)sizeof(int), total = 0, negative = 0;
    for (Py_ssize_t k = 0; k < n; k++) {
        total += length[k];
        negative |= length[k] < 0;
    }
    if (negative || firsts.len != lengths.len || total != PyUnicode_GET_LENGTH(chars)) {
        PyErr_SetString(PyExc_ValueError, "lengths, firsts and chars do not agree");
    } else if ((results = PyList_New(n))) {
        for (Py_ssize_t k = 0, start = 0; k < n; start += length[k++]) {
            PyObject *pair = encoding(chars, start, length[k], first[k]);
            if (!pair) {
                Py_CLEAR(results);
                break;
            }
            PyList_SET_ITEM(results, k, pair);
        }
    }
    PyBuffer_Release(&lengths);
    PyBuffer_Release(&firsts);
    return results;
}

static PyMethodDef module_methods[] = {
    {"id_lists", id_lists, METH_VARARGS,
     "id_lists(chars, n_first) -> (token_ids, segment_ids) of a str of id characters, "
     "segment 0 for the first n_first."},
    {"split_id_lists", split_id_lists, METH_VARARGS,
     "split_id_lists(chars, lengths, firsts) -> [id_lists(text_chars, first), ...] for "
     "texts whose id characters are concatenated in chars (lengths, firsts: array('i'))."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "wobert._wordcut",
    "jieba's cut with the HMM off, and the word tokenizer's ids, in C.", -1, module_methods,
};

PyMODINIT_FUNC PyInit__wordcut(void) {
    if (PyType_Ready(&WordCutterType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&module);
    if (!m)
        return NULL;
    Py_INCREF(&WordCutterType);
    if (PyModule_AddObject(m, "WordCutter", (PyObject *)&WordCutterType) < 0) {
        Py_DECREF(&WordCutterType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
