//! The automaton a glob pattern compiles to: single-character tokens, each matched once, at most
//! once or any number of times, plus optional `**/` groups. It is simulated over the input as a
//! set of states, so matching never backtracks and costs at most `input × pattern` steps.
//! Knows nothing of pattern syntax or filters.

/// What one token accepts as a single character.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum CharMatcher {
    Literal(char),
    /// `[...]`: inclusive ranges; a listed character is a range of one.
    Class(Vec<(char, char)>),
    /// `*`
    AnyButSlash,
    /// `**`
    Any,
}

impl CharMatcher {
    fn accepts(&self, character: char) -> bool {
        match self {
            CharMatcher::Literal(literal) => *literal == character,
            CharMatcher::Class(ranges) => ranges
                .iter()
                .any(|(low, high)| (*low..=*high).contains(&character)),
            CharMatcher::AnyButSlash => character != '/',
            CharMatcher::Any => true,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum Repeat {
    One,
    ZeroOrOne,
    ZeroOrMore,
}

#[derive(Clone, Debug, PartialEq)]
pub(super) enum Token {
    Atom(CharMatcher, Repeat),
    /// The start of an optional group `(...)?` that ends before token `usize`: used for `**/`,
    /// which matches nothing or any text ending in `/`.
    SkipTo(usize),
}

/// State `i` means "the next character must match token `i`"; the state after the last token
/// accepts. Matching may run a slice of the tokens: from `start` to `accept`.
#[derive(Clone, Debug)]
pub(super) enum Automaton {
    /// Up to 63 tokens: the state set is one machine word and every step is a few bit operations.
    Word(WordAutomaton),
    /// Longer patterns: the state set spans several words.
    Wide(WideAutomaton),
}

impl Automaton {
    pub(super) fn new(tokens: &[Token], start: usize, accept: usize) -> Automaton {
        if tokens.len() < 64 {
            Automaton::Word(WordAutomaton::new(tokens, start, accept))
        } else {
            Automaton::Wide(WideAutomaton::new(tokens, start, accept))
        }
    }

    pub(super) fn matches(&self, input: &str) -> bool {
        match self {
            Automaton::Word(automaton) => automaton.matches(input),
            Automaton::Wide(automaton) => automaton.matches(input),
        }
    }
}

#[derive(Clone, Debug)]
pub(super) struct WordAutomaton {
    tokens: Vec<Token>,
    /// For each ASCII character, the states whose token accepts it.
    ascii: Box<[u64; 128]>,
    /// States that stay put when they consume a character (`*`, `**`, `+`).
    stay: u64,
    /// States that may be passed without consuming anything.
    optional: u64,
    /// `**/` group starts and the state after their group.
    skips: Vec<(u64, u64)>,
    /// States that may consume: everything before the accepting state.
    live: u64,
    start: u64,
    accept: u64,
}

impl WordAutomaton {
    fn new(tokens: &[Token], start: usize, accept: usize) -> WordAutomaton {
        let mut automaton = WordAutomaton {
            tokens: tokens.to_vec(),
            ascii: Box::new([0u64; 128]),
            stay: 0,
            optional: 0,
            skips: Vec::new(),
            live: (1u64 << accept) - 1,
            start: 0,
            accept: 1u64 << accept,
        };
        for (state, token) in tokens.iter().enumerate() {
            let bit = 1u64 << state;
            match token {
                Token::Atom(matcher, repeat) => {
                    for character in 0u8..128 {
                        if matcher.accepts(char::from(character)) {
                            automaton.ascii[usize::from(character)] |= bit;
                        }
                    }
                    if *repeat == Repeat::ZeroOrMore {
                        automaton.stay |= bit;
                    }
                    if *repeat != Repeat::One {
                        automaton.optional |= bit;
                    }
                }
                Token::SkipTo(end) => {
                    automaton.optional |= bit;
                    automaton.skips.push((bit, 1u64 << end));
                }
            }
        }
        automaton.start = automaton.close(1u64 << start);
        automaton
    }

    /// Adds every state reachable without consuming a character.
    fn close(&self, mut states: u64) -> u64 {
        loop {
            let mut expanded = states | ((states & self.optional) << 1);
            for (from, to) in &self.skips {
                if states & from != 0 {
                    expanded |= to;
                }
            }
            if expanded == states {
                return states;
            }
            states = expanded;
        }
    }

    fn accepting(&self, character: char) -> u64 {
        match u8::try_from(character) {
            Ok(ascii) if ascii < 128 => self.ascii[usize::from(ascii)],
            _ => self
                .tokens
                .iter()
                .enumerate()
                .filter(|(_, token)| {
                    matches!(token, Token::Atom(matcher, _) if matcher.accepts(character))
                })
                .fold(0u64, |states, (state, _)| states | (1u64 << state)),
        }
    }

    fn matches(&self, input: &str) -> bool {
        let mut current = self.start;
        for character in input.chars() {
            let consumed = current & self.accepting(character) & self.live;
            if consumed == 0 {
                return false;
            }
            current = self.close((consumed & self.stay) | ((consumed & !self.stay) << 1));
        }
        current & self.accept != 0
    }
}

#[derive(Clone, Debug)]
pub(super) struct WideAutomaton {
    tokens: Vec<Token>,
    /// For each state, the states reachable from it without consuming a character.
    closures: Vec<Vec<u64>>,
    start: usize,
    accept: usize,
}

impl WideAutomaton {
    fn new(tokens: &[Token], start: usize, accept: usize) -> WideAutomaton {
        let words = (tokens.len() + 1).div_ceil(64);
        // Every edge that consumes nothing points forward, so one backward pass suffices.
        let mut closures = vec![vec![0u64; words]; tokens.len() + 1];
        for state in (0..=tokens.len()).rev() {
            let mut closure = vec![0u64; words];
            closure[state / 64] |= 1u64 << (state % 64);
            let forward: Vec<usize> = match tokens.get(state) {
                Some(Token::Atom(_, Repeat::ZeroOrOne | Repeat::ZeroOrMore)) => vec![state + 1],
                Some(Token::SkipTo(end)) => vec![state + 1, *end],
                _ => Vec::new(),
            };
            for target in forward {
                for (into, from) in closure.iter_mut().zip(&closures[target]) {
                    *into |= from;
                }
            }
            closures[state] = closure;
        }
        WideAutomaton {
            tokens: tokens.to_vec(),
            closures,
            start,
            accept,
        }
    }

    fn matches(&self, input: &str) -> bool {
        let mut current = self.closures[self.start].clone();
        let mut next = vec![0u64; current.len()];
        for character in input.chars() {
            next.iter_mut().for_each(|word| *word = 0);
            for (word_index, word) in current.iter().enumerate() {
                let mut remaining = *word;
                while remaining != 0 {
                    let state = word_index * 64 + remaining.trailing_zeros() as usize;
                    remaining &= remaining - 1;
                    if state >= self.accept {
                        continue;
                    }
                    if let Some(target) = self.step(state, character) {
                        for (into, from) in next.iter_mut().zip(&self.closures[target]) {
                            *into |= from;
                        }
                    }
                }
            }
            if next.iter().all(|word| *word == 0) {
                return false;
            }
            std::mem::swap(&mut current, &mut next);
        }
        current[self.accept / 64] & (1u64 << (self.accept % 64)) != 0
    }

    /// The state reached from `state` by consuming `character`, if any.
    fn step(&self, state: usize, character: char) -> Option<usize> {
        match &self.tokens[state] {
            Token::Atom(matcher, repeat) if matcher.accepts(character) => Some(match repeat {
                Repeat::ZeroOrMore => state,
                Repeat::One | Repeat::ZeroOrOne => state + 1,
            }),
            _ => None,
        }
    }
}
